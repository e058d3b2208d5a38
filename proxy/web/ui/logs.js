// The Logs tab: GET /logs/stream[/{source}] as it is written, with ANSI colours.
//
// "everything" is every source, each line prefixed with `[source]`; "proxy" is swapgate's
// own log; a model is that model's output. The stream starts with the kept history; after a
// reconnect the view starts over from it, so no line shows twice.

import { ansiSegments } from "./ansi.js";
import { call, errorOf, keepOpen, modelPath, readLines } from "./api.js";
import { $, el } from "./dom.js";
import { onModelsChanged } from "./models.js";

const MAX_LINES = 5000;
const PREFIX = /^\[([^\]]+)\] /;
let source = "upstream";
let stream = null; // AbortController of the open stream
let pending = [];
let flushing = false;

function lineNode(text) {
  const line = el("div", { className: "line" });
  let body = text;
  const prefix = source === "upstream" ? PREFIX.exec(text) : null;
  if (prefix) {
    line.append(el("span", { className: "src" }, prefix[0]));
    body = text.slice(prefix[0].length);
  }
  for (const segment of ansiSegments(body)) {
    line.append(segment.className ? el("span", { className: segment.className }, segment.text) : segment.text);
  }
  return line;
}

function add(text) {
  pending.push(text);
  if (pending.length > MAX_LINES) pending = pending.slice(-MAX_LINES);
  if (!flushing) {
    flushing = true;
    requestAnimationFrame(flush); // one DOM update per frame, however fast lines come
  }
}

function flush() {
  flushing = false;
  const view = $("#log-view");
  view.append(...pending.map(lineNode));
  pending = [];
  const extra = view.children.length - MAX_LINES;
  for (let i = 0; i < extra; i++) view.firstElementChild.remove();
  if ($("#log-follow").checked) view.scrollTop = view.scrollHeight;
}

function status(text) {
  $("#log-status").textContent = text;
}

function open() {
  if (stream) stream.abort();
  stream = new AbortController();
  const { signal } = stream;
  const path = source === "upstream" ? "/logs/stream" : `/logs/stream/${modelPath(source)}`;
  keepOpen(
    async (connected) => {
      const response = await call(path, { signal });
      if (!response.ok) throw await errorOf(response);
      pending = [];
      $("#log-view").replaceChildren();
      connected();
      await readLines(response, add);
    },
    signal,
    (state) => status(state === "live" ? "live" : state === "retrying" ? "reconnecting…" : state.message),
  );
}

function fillSources(models) {
  const select = $("#log-source");
  const fixed = [el("option", { value: "upstream" }, "everything"), el("option", { value: "proxy" }, "proxy")];
  select.replaceChildren(...fixed, ...models.map((m) => el("option", { value: m.model }, m.model)));
  const known = source === "upstream" || source === "proxy" || models.some((m) => m.model === source);
  select.value = known ? source : "upstream";
}

let started = false;

// The stream opens the first time the tab is shown, and stays open after.
export function startLogs() {
  if (started) return;
  started = true;
  open();
}

export function setupLogs() {
  onModelsChanged(fillSources);
  $("#log-source").addEventListener("change", (event) => {
    source = event.currentTarget.value;
    started = true;
    open();
  });
  $("#log-clear").addEventListener("click", () => $("#log-view").replaceChildren());
}
