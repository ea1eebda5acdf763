// The first screen: every namespace of the account (title, id, key count), with create,
// rename and delete (after a dialog that names the namespace).
import { go, session } from "./app.js";
import { confirmDialog } from "./dialog.js";
import { clearError, h, plural, replace, showError, status } from "./dom.js";

export async function listNamespaces() {
  const api = session.api;
  const all = [];
  for (let page = 1; ; page += 1) {
    const batch = await api.result("GET", api.ns(), {
      query: { page, per_page: 100, order: "title", direction: "asc" },
    });
    all.push(...batch);
    if (batch.length < 100) break;
  }
  session.namespaces = new Map(all.map((ns) => [ns.id, ns]));
  return all;
}

export async function keyCount(id) {
  const stats = await session.api.result("GET", `${session.api.ns(id)}/stats`);
  return stats;
}

export async function renderNamespaces(view) {
  const namespaces = await listNamespaces();
  const rows = namespaces.map((ns) => namespaceRow(ns));
  const createButton = h("button", { type: "button", class: "primary" }, "Create namespace");
  const formSlot = h("div");
  createButton.addEventListener("click", () => {
    replace(formSlot, createForm(formSlot));
    formSlot.querySelector("input").focus();
  });
  replace(
    view,
    h("h1", {}, "Namespaces"),
    h("div", { class: "toolbar" }, createButton, h("span", { class: "muted" }, plural(namespaces.length, "namespace", "namespaces"))),
    formSlot,
    h(
      "table",
      { "aria-label": "Namespaces" },
      h("thead", {}, h("tr", {}, h("th", {}, "Title"), h("th", {}, "ID"), h("th", { class: "num" }, "Keys"), h("th", {}, "Actions"))),
      h("tbody", {}, rows.map((r) => r.row)),
    ),
  );
  // Key counts come from the maintained totals (…/stats), one call per namespace.
  await Promise.all(
    rows.map(async ({ ns, count }) => {
      try {
        const stats = await keyCount(ns.id);
        count.textContent = String(stats.key_count);
      } catch (err) {
        count.textContent = "?";
        showError(err);
      }
    }),
  );
}

function namespaceRow(ns) {
  const count = h("td", { class: "num" }, "…");
  const title = h("a", { href: `#/ns/${ns.id}` }, ns.title);
  const titleCell = h("td", {}, title);
  const actions = h("td", {});
  const rename = h("button", { type: "button" }, "Rename");
  const remove = h("button", { type: "button", class: "danger" }, "Delete namespace");
  rename.addEventListener("click", () => replace(titleCell, renameForm(ns, titleCell, title)));
  remove.addEventListener("click", async () => {
    const yes = await confirmDialog({
      title: "Delete namespace",
      text: `Delete the namespace “${ns.title}” and every key in it? This cannot be undone.`,
    });
    if (!yes) return;
    try {
      await session.api.result("DELETE", session.api.ns(ns.id));
      status(`Deleted the namespace “${ns.title}”.`);
      go("#/");
    } catch (err) {
      showError(err);
    }
  });
  actions.append(rename, " ", remove);
  const row = h("tr", {}, titleCell, h("td", { class: "mono" }, ns.id), count, actions);
  return { ns, row, count };
}

function createForm(slot) {
  const input = h("input", { id: "new-title", type: "text", required: true, maxlength: 512 });
  const form = h(
    "form",
    { class: "panel", "aria-label": "Create namespace" },
    h("label", { for: "new-title" }, "Title"),
    input,
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", onclick: () => replace(slot) }, "Cancel"),
      h("button", { type: "submit", class: "primary" }, "Create"),
    ),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError();
    try {
      const ns = await session.api.result("POST", session.api.ns(), { json: { title: input.value } });
      status(`Created the namespace “${ns.title}”.`);
      go("#/");
    } catch (err) {
      showError(err); // the form keeps what was typed
    }
  });
  return form;
}

function renameForm(ns, cell, link) {
  const id = `rename-${ns.id}`;
  const input = h("input", { id, type: "text", value: ns.title, required: true, maxlength: 512 });
  const form = h(
    "form",
    { class: "inline", "aria-label": `Rename ${ns.title}` },
    h("label", { for: id }, "Title"),
    input,
    h("button", { type: "submit", class: "primary" }, "Save"),
    h("button", { type: "button", onclick: () => replace(cell, link) }, "Cancel"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError();
    try {
      await session.api.result("PUT", session.api.ns(ns.id), { json: { title: input.value } });
      status(`Renamed to “${input.value}”.`);
      go("#/");
    } catch (err) {
      showError(err);
    }
  });
  setTimeout(() => input.select(), 0);
  return form;
}
