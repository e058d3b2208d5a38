// Small DOM and formatting helpers shared by the tabs. Text always goes in as text nodes,
// never as HTML, so nothing a model or a client sent can become markup.

export const $ = (selector) => document.querySelector(selector);

// el("td", { className: "num" }, "42") -> <td class="num">42</td>
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (name === "dataset") Object.assign(node.dataset, value);
    else if (name in node) node[name] = value;
    else node.setAttribute(name, value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

export function cell(text, className) {
  return el("td", { className: className || "" }, text === null || text === undefined ? "—" : String(text));
}

let noticeTimer = null;

// A message at the top of the page for a few seconds (errors from button actions).
export function notify(message) {
  const box = $("#notice");
  box.textContent = message;
  box.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => (box.hidden = true), 8000);
}

export function seconds(value) {
  if (value === null || value === undefined) return "—";
  if (value < 1) return `${Math.round(value * 1000)} ms`;
  if (value < 100) return `${value.toFixed(2)} s`;
  return `${Math.round(value)} s`;
}

export function rate(value) {
  if (value === null || value === undefined) return "—";
  return value >= 100 ? Math.round(value).toLocaleString("en-US") : value.toFixed(1);
}

export function count(value) {
  return value === null || value === undefined ? "—" : value.toLocaleString("en-US");
}

export function clock(unixSeconds) {
  return new Date(unixSeconds * 1000).toLocaleTimeString("en-GB", { hour12: false });
}

// 125 -> "2:05", 3725 -> "1:02:05"
export function countdown(totalSeconds) {
  const s = Math.max(0, Math.floor(totalSeconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const secs = String(s % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${secs}` : `${minutes}:${secs}`;
}
