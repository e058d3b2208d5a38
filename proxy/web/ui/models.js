// The Models tab, and the page's list of models that the other tabs read.
//
// The list starts from the event stream's snapshot and follows its events; a state or queue
// event (and, at most once a second, a finished request) re-reads GET /running for the
// figures that come with it (pid, port, queue position, errors).

import { getJson, modelPath, post } from "./api.js";
import { $, cell, countdown, el, notify } from "./dom.js";

const models = new Map(); // id -> record, in the shape of GET /running's entries
const lastActive = new Map(); // id -> unix time its last request ended (or it became ready)
const listeners = [];
const STOPPED = {
  state: "stopped",
  pid: null,
  port: null,
  inFlight: 0,
  queued: 0,
  queuePosition: null,
  waitingFor: null,
};

export function onModelsChanged(listener) {
  listeners.push(listener);
}

export function modelList() {
  return [...models.values()];
}

function changed() {
  render();
  for (const listener of listeners) listener(modelList());
}

export function setSnapshot(records) {
  models.clear();
  for (const record of records) models.set(record.model, record);
  changed();
}

export function onState(event) {
  const record = models.get(event.model);
  if (!record) return;
  record.state = event.new;
  record.since = event.at;
  if (event.new === "ready") lastActive.set(event.model, event.at);
  changed();
  refresh();
}

export function onQueue(event) {
  const queued = new Map(event.queued);
  for (const record of models.values()) record.queued = queued.get(record.model) || 0;
  changed();
  refresh();
}

export function onMemory(event) {
  const record = models.get(event.model);
  if (!record) return;
  record.memory = { mib: event.mib, source: event.source, detail: event.detail };
  changed();
}

export function onRequest(record) {
  if (!record.backend) return;
  const ended = record.time + record.duration_s;
  lastActive.set(record.backend, Math.max(lastActive.get(record.backend) || 0, ended));
  refreshSoon();
}

// Requests seen in the activity history (newest first): when the history reaches back to
// the moment a model became ready, its idle time, and so its TTL countdown, is known.
export function seedActivity(records, complete) {
  const oldest = records.length ? records[records.length - 1].time : Infinity;
  for (const model of models.values()) {
    if (model.state !== "ready" || lastActive.has(model.model)) continue;
    if (!complete && oldest > model.since) continue;
    let last = model.since;
    for (const record of records) {
      if (record.backend === model.model) last = Math.max(last, record.time + record.duration_s);
    }
    lastActive.set(model.model, last);
  }
  render();
}

// ---- GET /running, at most one call at a time -------------------------------------------

let refreshing = false;
let again = false;
let soon = null;

async function refresh() {
  if (refreshing) {
    again = true;
    return;
  }
  refreshing = true;
  try {
    do {
      again = false;
      const body = await getJson("/running");
      merge(body.running);
    } while (again);
  } catch (error) {
    notify(`Could not read /running: ${error.message}`);
  } finally {
    refreshing = false;
  }
}

function refreshSoon() {
  if (soon !== null) return;
  soon = setTimeout(() => {
    soon = null;
    refresh();
  }, 1000);
}

function merge(running) {
  const byId = new Map(running.map((record) => [record.model, record]));
  for (const [id, record] of models) {
    const fresh = byId.get(id);
    Object.assign(record, fresh || STOPPED); // /running leaves stopped models out
  }
  changed();
}

// ---- the table -------------------------------------------------------------------------

function ttlText(record) {
  if (!record.ttl) return { text: "—", title: "no TTL: stays loaded until swapped out or unloaded" };
  const idle = `unloads after ${record.ttl} s without requests`;
  if (record.state !== "ready") return { text: `${record.ttl} s`, title: idle };
  if (record.inFlight > 0) return { text: "in use", title: idle };
  const last = lastActive.get(record.model);
  if (last === undefined) return { text: `${record.ttl} s`, title: `${idle} (last request not known)` };
  const left = record.ttl - (Date.now() / 1000 - last);
  return left > 0 ? { text: countdown(left), title: idle } : { text: "due", title: idle };
}

function memoryCell(record) {
  const memory = record.memory || {};
  const td = el("td", { className: "c-memory", title: memory.detail || "" });
  if (memory.mib) td.append(`${memory.mib.toLocaleString("en-US")} MiB `);
  td.append(el("span", { className: "muted" }, memory.source || "unknown"));
  if (record.vramMiB) td.append(el("div", { className: "muted" }, `GPU now ${record.vramMiB} MiB`));
  return td;
}

function errorCell(record) {
  const td = cell(record.lastError, record.lastError ? "c-error" : "muted");
  if (record.retryAfter) td.append(el("div", { className: "muted" }, `retry in ${record.retryAfter} s`));
  return td;
}

function actions(record) {
  const busy = record.state === "starting" || record.state === "stopping";
  const load = el("button", { type: "button", className: "load", textContent: "Load" });
  load.disabled = busy || record.state === "ready";
  load.addEventListener("click", () => act(load, `/api/models/load/${modelPath(record.model)}?wait=false`));
  const unload = el("button", { type: "button", className: "unload quiet", textContent: "Unload" });
  unload.disabled = record.state === "stopped";
  unload.addEventListener("click", () => act(unload, `/api/models/unload/${modelPath(record.model)}`));
  return el("td", { className: "c-actions" }, load, unload);
}

async function act(button, path) {
  button.disabled = true;
  try {
    await post(path);
  } catch (error) {
    notify(error.message);
  } finally {
    button.disabled = false; // the next state event redraws the row as it should be
  }
}

function row(record) {
  const ttl = ttlText(record);
  const title = el("td", { className: "c-model" }, el("strong", {}, record.model));
  if (record.name) title.append(el("div", { className: "muted" }, record.name));
  return el(
    "tr",
    { dataset: { model: record.model } },
    title,
    el("td", { className: "c-state" }, el("span", { className: `state ${record.state}` }, record.state)),
    cell(record.pid, "num c-pid"),
    cell(record.port, "num c-port"),
    memoryCell(record),
    el("td", { className: "c-ttl", title: ttl.title }, ttl.text),
    cell(record.inFlight, "num c-inflight"),
    cell(record.queued, "num c-queued"),
    errorCell(record),
    actions(record),
  );
}

function render() {
  const body = $("#models-table tbody");
  body.replaceChildren(...modelList().map(row));
  if (!models.size) {
    body.append(el("tr", {}, el("td", { colSpan: 10, className: "muted" }, "No models are configured.")));
  }
}

function tick() {
  for (const tr of document.querySelectorAll("#models-table tr[data-model]")) {
    const record = models.get(tr.dataset.model);
    if (record) tr.querySelector(".c-ttl").textContent = ttlText(record).text;
  }
}

export function setupModels() {
  $("#unload-all").addEventListener("click", (event) => act(event.currentTarget, "/api/models/unload"));
  setInterval(tick, 1000); // the countdown runs on the page's clock; nothing is fetched
}
