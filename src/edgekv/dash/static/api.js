// The REST API, as every other client uses it (rest-api.md), with the token the person typed.
// Errors carry the API's own message (the envelope's errors[0].message).

export class ApiError extends Error {
  constructor(message, status, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export class Api {
  // base: ".../client/v4"; token: the API token, or null for `edgekv dev` (local: true),
  // whose page is answered without one when it sends the X-EdgeKV-Dashboard header.
  constructor(base, token, local) {
    this.base = base;
    this.token = token;
    this.local = local;
    this.account = null;
  }

  headers(extra = {}) {
    const headers = { ...extra };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    if (this.local) headers["X-EdgeKV-Dashboard"] = "1";
    return headers;
  }

  ns(id) {
    return `/accounts/${this.account}/storage/kv/namespaces${id ? `/${id}` : ""}`;
  }

  // fetch() of a path under the base; throws ApiError for any non-2xx answer.
  async raw(method, path, { query, json, body, signal } = {}) {
    let url = this.base + path;
    if (query) {
      const params = new URLSearchParams();
      for (const [name, value] of Object.entries(query)) {
        if (value !== undefined && value !== null && value !== "") params.set(name, value);
      }
      const text = params.toString();
      if (text) url += `?${text}`;
    }
    const init = { method, headers: this.headers(), signal, cache: "no-store" };
    if (json !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(json);
    } else if (body !== undefined) {
      init.body = body;
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch (err) {
      throw new ApiError(`The server cannot be reached (${err.message})`, 0, 0);
    }
    if (!response.ok) throw await errorOf(response);
    return response;
  }

  // An enveloped call: returns {result, result_info}.
  async call(method, path, options) {
    const response = await this.raw(method, path, options);
    const envelope = await response.json();
    return { result: envelope.result, info: envelope.result_info || {} };
  }

  async result(method, path, options) {
    return (await this.call(method, path, options)).result;
  }
}

async function errorOf(response) {
  let message = `HTTP ${response.status}`;
  let code = 0;
  try {
    const envelope = await response.json();
    const first = envelope.errors && envelope.errors[0];
    if (first) {
      message = first.message;
      code = first.code;
    }
  } catch (_) {
    // not an envelope: keep the status line
  }
  return new ApiError(message, response.status, code);
}

// Percent-encode a key as one path segment (a "/" in a key stays inside it).
export function keyPath(key) {
  return encodeURIComponent(key);
}
