// The keys of a namespace: prefix search, cursor paging ("Load more"), the key count, select
// and delete in one bulk call, add, upload of bulk JSON, export.
import { session } from "./app.js";

import { confirmDialog } from "./dialog.js";
import { clearError, download, expirationText, h, plural, replace, shortJson, showError, status } from "./dom.js";
import { keyForm } from "./keyform.js";
import { keyCount, listNamespaces } from "./namespaces.js";

const PAGE = 100;
const BULK_CHUNK = 1000; // items per bulk call, as wrangler sends them
const SEARCH_DELAY = 250; // ms after the last keystroke

export async function renderKeys(view, namespaceId) {
  if (!session.namespaces.has(namespaceId)) await listNamespaces();
  const ns = session.namespaces.get(namespaceId);
  if (!ns) throw new Error("namespace not found");
  const state = { cursor: "", prefix: "", selected: new Set(), generation: 0 };

  const count = h("span", { class: "count" }, "");
  const search = h("input", { id: "prefix", type: "search", autocomplete: "off" });
  const tbody = h("tbody");
  const loadMore = h("button", { type: "button", hidden: true }, "Load more");
  const deleteSelected = h("button", { type: "button", class: "danger", disabled: true }, "Delete selected");
  const addButton = h("button", { type: "button", class: "primary" }, "Add key");
  const upload = h("input", { id: "upload", type: "file", accept: "application/json,.json" });
  const exportButton = h("button", { type: "button" }, "Export");
  const progress = h("progress", { max: 1, value: 0, hidden: true, "aria-label": "Progress" });
  const formSlot = h("div");

  async function refreshCount() {
    try {
      const stats = await keyCount(namespaceId);
      count.textContent = plural(stats.key_count, "key", "keys");
    } catch (err) {
      showError(err);
    }
  }

  function syncSelection() {
    deleteSelected.disabled = state.selected.size === 0;
  }

  function keyRow(entry) {
    const box = h("input", { type: "checkbox", "aria-label": `Select ${entry.name}` });
    box.addEventListener("change", () => {
      if (box.checked) state.selected.add(entry.name);
      else state.selected.delete(entry.name);
      syncSelection();
    });
    return h(
      "tr",
      {},
      h("td", {}, box),
      h("td", {}, h("a", { href: `#/ns/${namespaceId}/key/${encodeURIComponent(entry.name)}` }, entry.name)),
      h("td", {}, entry.expiration ? expirationText(entry.expiration) : ""),
      h("td", { class: "mono" }, shortJson(entry.metadata)),
    );
  }

  // One page of keys; `reset` starts over (a new prefix). Answers of an older search are dropped.
  async function load(reset) {
    const generation = reset ? ++state.generation : state.generation;
    if (reset) {
      state.cursor = "";
      state.selected.clear();
      syncSelection();
    }
    const { result, info } = await session.api.call("GET", `${session.api.ns(namespaceId)}/keys`, {
      query: { prefix: state.prefix, limit: PAGE, cursor: state.cursor },
    });
    if (generation !== state.generation) return;
    if (reset) tbody.replaceChildren();
    tbody.append(...result.map(keyRow));
    if (reset && result.length === 0) {
      tbody.append(h("tr", {}, h("td", { colspan: 4, class: "muted" }, state.prefix ? "No key starts with this prefix." : "No keys yet.")));
    }
    state.cursor = info.cursor || "";
    loadMore.hidden = !state.cursor;
  }

  const reload = async () => {
    try {
      await Promise.all([load(true), refreshCount()]);
    } catch (err) {
      showError(err);
    }
  };

  let timer = null;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      state.prefix = search.value;
      reload();
    }, SEARCH_DELAY);
  });
  search.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      clearTimeout(timer);
      state.prefix = search.value;
      reload();
    }
  });
  loadMore.addEventListener("click", async () => {
    try {
      await load(false);
    } catch (err) {
      showError(err);
    }
  });

  deleteSelected.addEventListener("click", async () => {
    const keys = [...state.selected];
    const yes = await confirmDialog({
      title: "Delete selected keys",
      text: `Delete ${plural(keys.length, "key", "keys")} from “${ns.title}”? This cannot be undone.`,
    });
    if (!yes) return;
    await bulk(keys, (chunk) => session.api.result("POST", `${session.api.ns(namespaceId)}/bulk/delete`, { json: chunk }), "Deleted");
  });

  addButton.addEventListener("click", () => {
    const form = keyForm(namespaceId, null, {
      onSaved: (key) => {
        status(`Saved “${key}”.`);
        replace(formSlot);
        reload();
      },
      onCancel: () => replace(formSlot),
    });
    replace(formSlot, form);
    form.querySelector("input").focus();
  });

  upload.addEventListener("change", async () => {
    const file = upload.files[0];
    if (!file) return;
    clearError();
    let items;
    try {
      items = JSON.parse(await file.text());
      if (!Array.isArray(items)) throw new Error("expected a JSON array of {key, value, …} items");
    } catch (err) {
      showError(new Error(`${file.name} is not a bulk-write file: ${err.message}`));
      upload.value = "";
      return;
    }
    await bulk(items, (chunk) => session.api.result("PUT", `${session.api.ns(namespaceId)}/bulk`, { json: chunk }), "Uploaded");
    upload.value = "";
  });

  // Runs a bulk operation in chunks, with progress; stops at the first error (shown).
  async function bulk(items, send, verb) {
    clearError();
    progress.max = Math.max(items.length, 1);
    progress.value = 0;
    progress.hidden = false;
    let done = 0;
    try {
      for (let i = 0; i < items.length; i += BULK_CHUNK) {
        const chunk = items.slice(i, i + BULK_CHUNK);
        await send(chunk);
        done += chunk.length;
        progress.value = done;
        status(`${verb} ${done} of ${items.length}…`);
      }
      status(`${verb} ${plural(done, "key", "keys")}.`);
    } catch (err) {
      showError(err);
      status(`${verb} ${done} of ${items.length} before the error.`);
    } finally {
      progress.hidden = true;
      await reload();
    }
  }

  exportButton.addEventListener("click", async () => {
    clearError();
    progress.hidden = false;
    progress.removeAttribute("value"); // indeterminate: the size is not known in advance
    status(`Exporting “${ns.title}”…`);
    try {
      const response = await session.api.raw("GET", `${session.api.ns(namespaceId)}/export`);
      const blob = await response.blob();
      download(blob, `${ns.title.replace(/[^\w.-]+/g, "_") || namespaceId}.ndjson`);
      status(`Exported “${ns.title}” (${blob.size} bytes).`);
    } catch (err) {
      showError(err);
      status("");
    } finally {
      progress.hidden = true;
    }
  });

  replace(
    view,
    h("p", {}, h("a", { href: "#/" }, "← Namespaces")),
    h("h1", {}, ns.title),
    h("p", { class: "muted" }, "Namespace ", h("code", {}, ns.id), " · ", count, " · ", h("a", { href: `#/ns/${namespaceId}/metrics` }, "Metrics")),
    h(
      "div",
      { class: "toolbar" },
      h("label", { for: "prefix" }, "Prefix"),
      search,
      h("span", { class: "grow" }),
      addButton,
      h("label", { for: "upload", class: "button" }, "Upload JSON"),
      upload,
      exportButton,
      deleteSelected,
      progress,
    ),
    formSlot,
    h(
      "table",
      { "aria-label": `Keys of ${ns.title}` },
      h("thead", {}, h("tr", {}, h("th", {}, h("span", { class: "muted" }, "Select")), h("th", {}, "Key"), h("th", {}, "Expiration"), h("th", {}, "Metadata"))),
      tbody,
    ),
    loadMore,
  );
  await reload();
  search.focus();
}


