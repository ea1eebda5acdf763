// One key: its value (text, pretty JSON, or size + hex preview with Download), metadata,
// expiration and version; Edit (the same form as Add key) and Delete key.
// A large value is fetched once and only a preview goes into the page, so 25 MiB opens fast.
import { go, session } from "./app.js";
import { keyPath } from "./api.js";
import { confirmDialog } from "./dialog.js";
import { download, expirationText, formatBytes, h, replace, showError, status } from "./dom.js";
import { keyForm } from "./keyform.js";
import { listNamespaces } from "./namespaces.js";

const PREVIEW_BYTES = 64 * 1024; // text shown in the page at most
const JSON_MAX = 1024 * 1024; // pretty-printed only up to this size
const HEX_BYTES = 512; // bytes of a binary value shown as hex

// What the value looks like: {kind: "text"|"json"|"binary", text, shown, complete}.
export function describe(bytes) {
  const view = new Uint8Array(bytes, 0, Math.min(bytes.byteLength, PREVIEW_BYTES));
  let text;
  try {
    // stream: a multi-byte character cut by the preview's end is not an error
    text = new TextDecoder("utf-8", { fatal: true }).decode(view, { stream: view.byteLength < bytes.byteLength });
  } catch (_) {
    return { kind: "binary", text: null, shown: hex(bytes), complete: false };
  }
  const complete = view.byteLength === bytes.byteLength;
  if (complete && bytes.byteLength <= JSON_MAX) {
    try {
      const parsed = JSON.parse(text);
      if (parsed !== null && typeof parsed === "object") {
        return { kind: "json", text, shown: JSON.stringify(parsed, null, 2), complete };
      }
    } catch (_) {
      // plain text
    }
  }
  return { kind: "text", text: complete ? text : null, shown: text, complete };
}

function hex(bytes) {
  const view = new Uint8Array(bytes, 0, Math.min(bytes.byteLength, HEX_BYTES));
  const lines = [];
  for (let i = 0; i < view.length; i += 16) {
    const row = Array.from(view.slice(i, i + 16), (b) => b.toString(16).padStart(2, "0"));
    lines.push(`${i.toString(16).padStart(8, "0")}  ${row.join(" ")}`);
  }
  return lines.join("\n");
}

export async function renderKey(view, namespaceId, key) {
  if (!session.namespaces.has(namespaceId)) await listNamespaces();
  const ns = session.namespaces.get(namespaceId);
  if (!ns) throw new Error("namespace not found");
  const api = session.api;
  const path = `${api.ns(namespaceId)}/values/${keyPath(key)}`;
  const [response, metadata] = await Promise.all([
    api.raw("GET", path),
    api.result("GET", `${api.ns(namespaceId)}/metadata/${keyPath(key)}`),
  ]);
  const bytes = await response.arrayBuffer();
  const expiration = Number(response.headers.get("expiration")) || null;
  const version = response.headers.get("etag");
  const value = describe(bytes);

  const valueBox = h("pre", { "aria-label": "Value", tabindex: 0 }, value.shown);
  const notes = [];
  if (value.kind === "binary") notes.push(h("p", { class: "muted" }, `Binary value, ${formatBytes(bytes.byteLength)}; the first ${Math.min(HEX_BYTES, bytes.byteLength)} bytes in hex:`));
  else if (!value.complete) notes.push(h("p", { class: "muted" }, `Showing the first ${formatBytes(PREVIEW_BYTES)} of ${formatBytes(bytes.byteLength)}.`));
  const downloadButton =
    value.kind === "binary" || !value.complete
      ? h("button", { type: "button", onclick: () => download(new Blob([bytes]), key.split("/").pop() || "value") }, "Download")
      : null;

  const editButton = h("button", { type: "button", class: "primary" }, "Edit");
  const deleteButton = h("button", { type: "button", class: "danger" }, "Delete key");
  const formSlot = h("div");
  const now = Date.now() / 1000;
  editButton.addEventListener("click", () => {
    const ttl = expiration ? Math.max(60, Math.round(expiration - now)) : null;
    const form = keyForm(namespaceId, { key, text: value.text, bytes, metadata, ttl }, {
      onSaved: () => {
        status(`Saved “${key}”.`);
        go(location.hash);
      },
      onCancel: () => replace(formSlot),
    });
    replace(formSlot, form);
    form.querySelector("textarea").focus();
  });
  deleteButton.addEventListener("click", async () => {
    const yes = await confirmDialog({ title: "Delete key", text: `Delete the key “${key}” from “${ns.title}”?` });
    if (!yes) return;
    try {
      await api.result("DELETE", path);
      status(`Deleted “${key}”.`);
      go(`#/ns/${namespaceId}`);
    } catch (err) {
      showError(err);
    }
  });

  const facts = h(
    "dl",
    { class: "facts" },
    h("dt", {}, "Size"),
    h("dd", {}, formatBytes(bytes.byteLength)),
    h("dt", {}, "Type"),
    h("dd", {}, value.kind === "json" ? "JSON" : value.kind),
    h("dt", {}, "Expiration"),
    h("dd", {}, expirationText(expiration)),
    version ? [h("dt", {}, "Version"), h("dd", { class: "mono" }, version)] : null,
  );
  replace(
    view,
    h("p", {}, h("a", { href: `#/ns/${namespaceId}` }, `← ${ns.title}`)),
    h("h1", {}, key),
    h("div", { class: "toolbar" }, editButton, deleteButton, downloadButton),
    formSlot,
    facts,
    h("h2", {}, "Value"),
    notes,
    valueBox,
    h("h2", {}, "Metadata"),
    h("pre", { "aria-label": "Metadata", tabindex: 0 }, metadata === null ? "(none)" : JSON.stringify(metadata, null, 2)),
  );
}
