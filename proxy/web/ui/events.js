// The Events tab: the lifecycle events of GET /api/events as they happen, newest first.

import { $, clock, el, seconds } from "./dom.js";

const MAX_EVENTS = 500;

function list(items) {
  return items && items.length ? items.join(", ") : "";
}

// One line of text for each kind of event.
const DESCRIBE = {
  state: (e) => `${e.model}: ${e.old} → ${e.new} (${e.cause})${e.detail ? ` — ${e.detail}` : ""}`,
  queue: (e) =>
    e.queued.length ? `waiting: ${list(e.queued.map(([model, n]) => `${model} ×${n}`))}` : "no request waiting",
  swap_started: (e) => `swap to ${e.target}${e.evict.length ? `, stopping ${list(e.evict)}` : ""}`,
  swap_finished: (e) => `swap to ${e.target} ${e.error ? `failed: ${e.error}` : "done"} in ${seconds(e.duration_s)}`,
  memory: (e) => `${e.model}: ${e.mib.toLocaleString("en-US")} MiB (${e.source})${e.detail ? ` — ${e.detail}` : ""}`,
  config_reloaded: (e) =>
    [
      `config ${e.outcome} (${e.trigger})`,
      e.added.length ? `added ${list(e.added)}` : "",
      e.changed.length ? `changed ${list(e.changed)}` : "",
      e.removed.length ? `removed ${list(e.removed)}` : "",
      list(e.problems),
    ]
      .filter(Boolean)
      .join("; "),
  request: ({ record: r }) => `${r.method} ${r.path} → ${r.status} (${r.model}, ${seconds(r.duration_s)})`,
};

export function addEvent(kind, event) {
  if (kind === "request" && !$("#events-requests").checked) return;
  let text;
  try {
    text = (DESCRIBE[kind] || JSON.stringify)(event);
  } catch {
    text = JSON.stringify(event); // a shape this page does not know yet
  }
  const feed = $("#events-list");
  feed.prepend(
    el(
      "li",
      { className: `event ev-${kind}`, dataset: { kind } },
      el("time", {}, clock(event.at || Date.now() / 1000)),
      el("span", { className: "kind" }, kind.replace("_", " ")),
      el("span", { className: "what" }, text),
    ),
  );
  while (feed.children.length > MAX_EVENTS) feed.lastElementChild.remove();
}

export function setupEvents() {
  $("#events-clear").addEventListener("click", () => $("#events-list").replaceChildren());
}
