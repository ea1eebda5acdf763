// A namespace's last hour from the server's own counters (GET …/{ns}/metrics): requests per
// minute by operation in a small SVG chart, and per operation the count, errors, p50, p99.
import { session } from "./app.js";
import { h, replace } from "./dom.js";
import { lineChart } from "./chart.js";
import { listNamespaces } from "./namespaces.js";

function ms(seconds) {
  return seconds === null || seconds === undefined ? "–" : `${(seconds * 1000).toFixed(seconds < 0.01 ? 2 : 1)} ms`;
}

export async function renderMetrics(view, namespaceId) {
  if (!session.namespaces.has(namespaceId)) await listNamespaces();
  const ns = session.namespaces.get(namespaceId);
  if (!ns) throw new Error("namespace not found");
  const window = await session.api.result("GET", `${session.api.ns(namespaceId)}/metrics`);
  const operations = Object.keys(window.operations);
  const series = operations.map((op) => ({ name: op, points: window.minutes.map((m) => m.ops[op] || 0) }));
  const labels = window.minutes.map((m) => new Date(m.start * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
  replace(
    view,
    h("p", {}, h("a", { href: `#/ns/${namespaceId}` }, `← ${ns.title}`)),
    h("h1", {}, `Metrics of ${ns.title}`),
    h("p", { class: "muted" }, "Requests per minute over the last hour, counted by this server."),
    operations.length ? lineChart(series, labels, `Requests per minute in ${ns.title}`) : h("p", { class: "muted" }, "No requests in the last hour."),
    h(
      "table",
      { "aria-label": "Operations" },
      h("thead", {}, h("tr", {}, h("th", {}, "Operation"), h("th", { class: "num" }, "Requests"), h("th", { class: "num" }, "Errors"), h("th", { class: "num" }, "p50"), h("th", { class: "num" }, "p99"))),
      h(
        "tbody",
        {},
        operations.map((op) => {
          const o = window.operations[op];
          return h("tr", {}, h("td", {}, op.replaceAll("_", " ")), h("td", { class: "num" }, o.count), h("td", { class: "num" }, o.errors), h("td", { class: "num" }, ms(o.p50_seconds)), h("td", { class: "num" }, ms(o.p99_seconds)));
        }),
      ),
    ),
  );
}
