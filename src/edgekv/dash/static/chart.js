// A small line chart in SVG, drawn here (no library): one line per series, colours from the
// stylesheet (classes series-0..5), y axis from 0 to the largest value.
import { h, svg } from "./dom.js";

const W = 720;
const H = 200;
const PAD = { left: 40, right: 10, top: 12, bottom: 24 };

export function lineChart(series, labels, title) {
  const max = Math.max(1, ...series.flatMap((s) => s.points));
  const n = Math.max(labels.length - 1, 1);
  const x = (i) => PAD.left + (i / n) * (W - PAD.left - PAD.right);
  const y = (v) => H - PAD.bottom - (v / max) * (H - PAD.top - PAD.bottom);
  const chart = svg("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title });
  chart.append(svg("title", {}, title));
  chart.append(svg("line", { class: "axis", x1: PAD.left, y1: y(0), x2: W - PAD.right, y2: y(0) }));
  chart.append(svg("line", { class: "axis", x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: y(0) }));
  chart.append(svg("text", { class: "label", x: PAD.left - 6, y: PAD.top + 4, "text-anchor": "end" }, String(max)));
  chart.append(svg("text", { class: "label", x: PAD.left - 6, y: y(0), "text-anchor": "end" }, "0"));
  for (const i of [0, Math.floor(n / 2), n]) {
    if (labels[i]) chart.append(svg("text", { class: "label", x: x(i), y: H - 6, "text-anchor": "middle" }, labels[i]));
  }
  series.forEach((s, k) => {
    const points = s.points.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    chart.append(svg("polyline", { class: `series series-${k % 6}`, points, "fill-opacity": 0 }));
  });
  const legend = h(
    "div",
    { class: "legend" },
    series.map((s, k) => h("span", {}, h("span", { class: `swatch series-${k % 6}` }), s.name.replaceAll("_", " "))),
  );
  return h("figure", {}, chart, legend);
}
