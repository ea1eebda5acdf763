// Small DOM helpers: elements are built with createElement and text nodes, never from HTML
// strings, so no value, key or message can turn into markup.

export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else if (value === true) node.setAttribute(name, "");
    else node.setAttribute(name, String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

const SVG = "http://www.w3.org/2000/svg";

export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function replace(node, ...children) {
  node.replaceChildren();
  append(node, children);
}

const alertBox = () => document.getElementById("alert");

export function showError(err) {
  const box = alertBox();
  box.textContent = err && err.message ? err.message : String(err);
  box.hidden = false;
}

export function clearError() {
  const box = alertBox();
  box.textContent = "";
  box.hidden = true;
}

// A short note of what just happened; it outlives the next render (the view an action
// navigates to), not the one after (see clearStaleStatus).
export function status(text) {
  const box = document.getElementById("status");
  box.textContent = text;
  box.dataset.fresh = "1";
}

export function clearStaleStatus() {
  const box = document.getElementById("status");
  if (box.dataset.fresh) delete box.dataset.fresh;
  else box.textContent = "";
}

export function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

export function formatBytes(n) {
  if (n < 1024) return plural(n, "byte", "bytes");
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

// "in 3 h", "in 5 min", "2 d ago": the expiration relative to now.
export function relative(epochSeconds, now = Date.now() / 1000) {
  const delta = epochSeconds - now;
  const abs = Math.abs(delta);
  let text;
  if (abs < 60) text = `${Math.round(abs)} s`;
  else if (abs < 3600) text = `${Math.round(abs / 60)} min`;
  else if (abs < 86400) text = `${Math.round(abs / 3600)} h`;
  else text = `${Math.round(abs / 86400)} d`;
  return delta >= 0 ? `in ${text}` : `${text} ago`;
}

export function dateOf(epochSeconds) {
  return new Date(epochSeconds * 1000).toLocaleString();
}

export function expirationText(epochSeconds) {
  if (!epochSeconds) return "never";
  return `${dateOf(epochSeconds)} (${relative(epochSeconds)})`;
}

export function shortJson(value, max = 60) {
  if (value === undefined || value === null) return "";
  const text = JSON.stringify(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

// Offer `blob` as a file download under `name` (a temporary link to an object URL).
export function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
