// The form of "Add key" and "Edit": key, value, metadata (JSON, checked before sending) and
// expiration TTL. A failed save shows the API's message and keeps everything typed.
import { session } from "./app.js";
import { keyPath } from "./api.js";
import { clearError, h, showError } from "./dom.js";

let counter = 0;

// existing: {key, text, bytes, metadata, ttl} to edit (the key is then fixed), or null to add.
// A value that is not shown whole as text (binary, or larger than the preview) cannot be
// edited here: its box is disabled and saving keeps its bytes as they are.
export function keyForm(namespaceId, existing, { onSaved, onCancel }) {
  counter += 1;
  const ids = ["key", "value", "metadata", "ttl"].map((name) => `${name}-${counter}`);
  const key = h("input", { id: ids[0], type: "text", required: true, readonly: !!existing });
  const value = h("textarea", { id: ids[1], rows: 6 });
  const metadata = h("textarea", { id: ids[2], rows: 3, class: "mono", placeholder: '{"done": false}' });
  const ttl = h("input", { id: ids[3], type: "number", step: 1, placeholder: "none" });
  if (existing) {
    key.value = existing.key;
    value.value = existing.text ?? "";
    metadata.value = existing.metadata === null || existing.metadata === undefined ? "" : JSON.stringify(existing.metadata, null, 2);
    ttl.value = existing.ttl ? String(existing.ttl) : "";
    if (existing.text === null) {
      value.disabled = true;
      value.placeholder = "This value is binary or large: it is kept as it is.";
    }
  }
  const save = h("button", { type: "submit", class: "primary" }, "Save");
  const notes = [];
  if (session.readOnly) {
    save.disabled = true;
    notes.push(
      h("p", { class: "notice" }, "This API token is read-only: it can browse the data but cannot save changes. Sign in with a read-write token to edit."),
    );
  }
  const form = h(
    "form",
    { class: "panel", "aria-label": existing ? `Edit ${existing.key}` : "Add key" },
    notes,
    h("label", { for: ids[0] }, "Key"),
    key,
    h("label", { for: ids[1] }, "Value"),
    value,
    h("label", { for: ids[2] }, "Metadata (JSON)"),
    metadata,
    h("label", { for: ids[3] }, "Expiration TTL (seconds)"),
    ttl,
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", onclick: onCancel }, "Cancel"),
      save,
    ),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError();
    if (session.readOnly) {
      showError(new Error("This API token is read-only: it cannot save changes."));
      return;
    }
    const metaText = metadata.value.trim();
    if (metaText) {
      try {
        JSON.parse(metaText);
      } catch (err) {
        showError(new Error(`Metadata (JSON) is not valid JSON: ${err.message}. Nothing was sent.`));
        metadata.focus();
        return;
      }
    }
    const body = new FormData();
    const keep = existing && existing.text === null;
    body.append("value", new Blob([keep ? existing.bytes : value.value]));
    if (metaText) body.append("metadata", metaText);
    save.disabled = true;
    try {
      await session.api.raw("PUT", `${session.api.ns(namespaceId)}/values/${keyPath(key.value)}`, {
        body,
        query: { expiration_ttl: ttl.value.trim() },
      });
      onSaved(key.value);
    } catch (err) {
      showError(err);
    } finally {
      save.disabled = false;
    }
  });
  return form;
}
