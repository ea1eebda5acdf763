"""The JavaScript worker the workerd tests run, and how to call a binding method through it.

The worker turns `POST /call {"ns", "op", "args"}` into `env[ns][op](...args)` and answers with
what JavaScript got back, in JSON: `{"ok": value}` (a Map as `{"map": {...}}`, an ArrayBuffer as
`{"bytes": base64}`, a stream as `{"stream": text}`, `undefined` as `{"undefined": true}`) or
`{"error": "Error: KV PUT failed: ..."}`: exactly the text a worker's `String(error)` shows.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import httpx

# A var that needs every kind of escaping in the generated capnp config.
TRICKY = 'quote " back \\ nl \n tab \t ctl \x01 🤓 } ] ) ;'
TRICKY_TOML = json.dumps(
    TRICKY, ensure_ascii=False
)  # a TOML basic string reads JSON's escapes alike

NS_ID = "5e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b"
NS2_ID = "6f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c"
PREVIEW_ID = "7a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d"

WORKER = r"""
import { describe } from "./lib/describe.mjs";

function streamOf(chunks) {
  const encoder = new TextEncoder();
  return new ReadableStream({
    pull(controller) {
      if (chunks.length === 0) { controller.close(); return; }
      controller.enqueue(encoder.encode(chunks.shift()));
    },
  });
}

function bigStream(size) {
  let left = size;
  const block = new Uint8Array(8192).fill(98);
  return new ReadableStream({
    pull(controller) {
      if (left <= 0) { controller.close(); return; }
      const n = Math.min(left, block.length);
      controller.enqueue(block.slice(0, n));
      left -= n;
    },
  });
}

function fromBase64(text) {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/crash") throw new Error("boom-from-js");
    if (url.pathname === "/vars") {
      return Response.json({
        greeting: env.GREETING, conf: env.CONF, tricky: env.TRICKY, version: VERSION,
      });
    }
    if (url.pathname === "/hot") {
      return new Response(await env.KV.get("hot"));
    }
    if (url.pathname !== "/call") return new Response("not found", { status: 404 });
    const { ns = "KV", op, args = [], value } = await request.json();
    const kv = env[ns];
    try {
      let result;
      if (op === "putStream") {
        result = await kv.put(args[0], streamOf(value), args[1]);
      } else if (op === "putBig") {
        result = await kv.put(args[0], bigStream(value), args[1]);
      } else if (op === "putBytes") {
        result = await kv.put(args[0], fromBase64(value), args[1]);
      } else {
        result = await kv[op](...args);
      }
      return Response.json({ ok: await describe(result) });
    } catch (error) {
      return Response.json({ error: String(error) });
    }
  },
};

const VERSION = "v1";
"""

DESCRIBE = r"""
function toBase64(buffer) {
  let text = "";
  for (const byte of new Uint8Array(buffer)) text += String.fromCharCode(byte);
  return btoa(text);
}

export async function describe(value) {
  if (value === null) return null;
  if (value === undefined) return { undefined: true };
  if (value instanceof Map) {
    const out = {};
    for (const [k, v] of value) out[k] = v;
    return { map: out };
  }
  if (value instanceof ArrayBuffer) return { bytes: toBase64(value) };
  if (value instanceof ReadableStream) return { stream: await new Response(value).text() };
  if (value && typeof value === "object" && "value" in value && "metadata" in value) {
    return { ...value, value: await describe(value.value) };
  }
  return value;
}
"""


def write_project(
    root: Path,
    *,
    bindings: dict[str, str] | None = None,
    config: str | None = None,
    config_name: str = "wrangler.toml",
) -> Path:
    """The worker under `root/src/`, and a config (`config` text, or a wrangler.toml with
    `bindings` {name: id} and two vars). Returns `root`."""
    (root / "src" / "lib").mkdir(parents=True, exist_ok=True)
    (root / "src" / "worker.js").write_text(WORKER)
    (root / "src" / "lib" / "describe.mjs").write_text(DESCRIBE)
    if config is None:
        items = ", ".join(
            f'{{ binding = "{name}", id = "{ns}" }}'
            for name, ns in (bindings or {"KV": NS_ID, "OTHER": NS2_ID}).items()
        )
        config = textwrap.dedent(
            f"""\
            name = "js-test"
            main = "src/worker.js"
            compatibility_date = "2026-11-01"
            kv_namespaces = [{items}]
            [vars]
            GREETING = "hello"
            CONF = {{ depth = 2, tags = ["a", "b"] }}
            TRICKY = {TRICKY_TOML}
            """
        )
    (root / config_name).write_text(config)
    return root


class Caller:
    """`call(op, *args)` through the worker: the JSON of what JavaScript got."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def __call__(self, op: str, *args: Any, ns: str = "KV", value: Any = None) -> Any:
        # json.dumps escapes a lone surrogate as \ud800, which JSON.parse turns back into one.
        payload = json.dumps({"ns": ns, "op": op, "args": list(args), "value": value})
        response = self.http.post("/call", content=payload.encode(), timeout=60)
        assert response.status_code == 200, response.text
        return response.json()

    def ok(self, op: str, *args: Any, ns: str = "KV", value: Any = None) -> Any:
        answer = self(op, *args, ns=ns, value=value)
        assert "ok" in answer, answer
        return answer["ok"]

    def error(self, op: str, *args: Any, ns: str = "KV", value: Any = None) -> str:
        answer = self(op, *args, ns=ns, value=value)
        assert "error" in answer, answer
        return str(answer["error"])
