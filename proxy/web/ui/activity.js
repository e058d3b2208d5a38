// The Activity tab: recent requests, newest first, with a summary of them on top.
//
// The history comes from GET /api/activity (filtered by model and status); requests that
// finish while the page is open arrive as `request` events and go on top of the table.

import { call, errorOf, getJson } from "./api.js";
import { $, cell, clock, count, el, notify, rate, seconds } from "./dom.js";
import { onModelsChanged, seedActivity } from "./models.js";

const PAGE = 100;
const MAX_ROWS = 1000; // older rows leave the table; "Older requests" pages through the rest
const filters = { model: "", status: "" };
let shown = new Set(); // ids in the table
let next = null; // what to pass as before= for the next older page
let summary = null;
let summaryTimer = null;
let seeded = false;
let generation = 0; // a reload answered after a newer one started is dropped

function query(extra = {}) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries({ ...filters, ...extra })) {
    if (value !== "" && value !== null && value !== undefined) params.set(name, value);
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}

function matches(record) {
  if (filters.model && record.model !== filters.model && record.backend !== filters.model) return false;
  const wanted = filters.status;
  if (!wanted) return true;
  if (wanted === "error") return record.status >= 400;
  if (/^[1-5]xx$/.test(wanted)) return String(record.status)[0] === wanted[0];
  return String(record.status) === wanted;
}

function statusClass(status) {
  if (status >= 500) return "bad";
  if (status >= 400) return "warn";
  return "ok";
}

function row(record) {
  const route = record.route ? (record.arm ? `${record.route} / ${record.arm}` : record.route) : null;
  const badge = el("span", { className: `status ${statusClass(record.status)}` }, String(record.status));
  const status = el("td", { className: "num" }, badge);
  if (!record.complete) {
    status.append(el("span", { className: "muted", title: "the answer was cut short" }, " ✂"));
  }
  return el(
    "tr",
    { dataset: { id: String(record.id) }, title: `${record.method} ${record.path}` },
    cell(clock(record.time), "c-time"),
    cell(record.model, "c-model"),
    cell(record.backend || null, "c-backend"),
    cell(route, "c-route"),
    cell(record.endpoint, "c-endpoint"),
    status,
    cell(seconds(record.ttft_s), "num"),
    cell(seconds(record.duration_s), "num"),
    cell(count(record.prompt_tokens), "num"),
    cell(count(record.cached_tokens), "num"),
    cell(count(record.generated_tokens), "num"),
    cell(rate(record.prefill_tokens_per_s), "num"),
    cell(rate(record.decode_tokens_per_s), "num"),
  );
}

function renderSummary() {
  const box = $("#activity-summary");
  if (!summary) {
    box.replaceChildren();
    return;
  }
  const s = summary;
  const pair = (figure, label, value) =>
    el("div", { dataset: { figure } }, el("dt", {}, label), el("dd", {}, value));
  const tokens = [s.prompt_tokens, s.cached_tokens, s.generated_tokens].map(count).join(" / ");
  box.replaceChildren(
    pair("requests", "Requests", count(s.requests)),
    pair("errors", "Errors", count(s.errors)),
    pair("tokens", "Tokens in / cached / out", tokens),
    pair("ttft", "TTFT p50 / p95", `${seconds(s.ttft_p50_s)} / ${seconds(s.ttft_p95_s)}`),
    pair("duration", "Duration p50 / p95", `${seconds(s.duration_p50_s)} / ${seconds(s.duration_p95_s)}`),
    pair("prefill", "Prefill t/s p50", rate(s.prefill_tokens_per_s)),
    pair("decode", "Decode t/s p50", rate(s.decode_tokens_per_s)),
  );
}

function showEmpty() {
  $("#activity-empty").hidden = shown.size > 0;
  $("#activity-more").hidden = next === null || next === undefined;
}

async function reload() {
  $("#activity-csv").href = `/api/activity.csv${query()}`;
  const mine = ++generation;
  let body;
  try {
    body = await getJson(`/api/activity${query({ limit: PAGE })}`);
    if (mine !== generation) return;
  } catch (error) {
    $("#activity-empty").textContent = `The activity log could not be read: ${error.message}`;
    $("#activity-empty").hidden = false;
    return;
  }
  const tbody = $("#activity-table tbody");
  // Rows that arrived live while the page was being fetched stay on top.
  const newest = body.records.length ? body.records[0].id : -1;
  const live = [...tbody.children].filter((tr) => Number(tr.dataset.id) > newest);
  tbody.replaceChildren(...live, ...body.records.map(row));
  shown = new Set([...tbody.children].map((tr) => Number(tr.dataset.id)));
  next = body.next;
  summary = body.summary;
  renderSummary();
  showEmpty();
  if (!seeded && !filters.model && !filters.status) {
    seeded = true;
    seedActivity(body.records, body.next === null);
  }
}

async function older() {
  if (next === null) return;
  try {
    const body = await getJson(`/api/activity${query({ limit: PAGE, before: next })}`);
    const fresh = body.records.filter((record) => !shown.has(record.id));
    for (const record of fresh) shown.add(record.id);
    $("#activity-table tbody").append(...fresh.map(row));
    next = body.next;
    showEmpty();
  } catch (error) {
    notify(error.message);
  }
}

// A request just finished (a `request` event).
export function onRequest(record) {
  if (!matches(record) || shown.has(record.id)) return;
  const tbody = $("#activity-table tbody");
  tbody.prepend(row(record));
  shown.add(record.id);
  if (tbody.children.length > MAX_ROWS) {
    while (tbody.children.length > MAX_ROWS) {
      shown.delete(Number(tbody.lastElementChild.dataset.id));
      tbody.lastElementChild.remove();
    }
    next = Number(tbody.lastElementChild.dataset.id); // "Older requests" goes on from here
  }
  if (summary) {
    summary.requests = (summary.requests || 0) + 1;
    if (record.status >= 400) summary.errors = (summary.errors || 0) + 1;
    for (const name of ["prompt_tokens", "cached_tokens", "generated_tokens"]) {
      if (record[name] !== null && record[name] !== undefined) {
        summary[name] = (summary[name] || 0) + record[name];
      }
    }
    renderSummary();
  }
  showEmpty();
  // Percentiles and speeds need the server: ask again, at most every two seconds.
  if (summaryTimer === null) summaryTimer = setTimeout(refreshSummary, 2000);
}

async function refreshSummary() {
  summaryTimer = null;
  try {
    summary = (await getJson(`/api/activity${query({ limit: 1 })}`)).summary;
    renderSummary();
  } catch {
    // the next request event tries again
  }
}

// The CSV link fetches with the key, then hands the file to the browser.
async function download(event) {
  event.preventDefault();
  const href = event.currentTarget.href;
  try {
    const response = await call(href);
    if (!response.ok) throw await errorOf(response);
    const url = URL.createObjectURL(await response.blob());
    el("a", { href: url, download: "activity.csv" }).click();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (error) {
    notify(`Export failed: ${error.message}`);
  }
}

function fillModels(models) {
  const select = $("#activity-model");
  const current = select.value;
  const options = models.map((m) => el("option", { value: m.model }, m.model));
  select.replaceChildren(el("option", { value: "" }, "all"), ...options);
  select.value = models.some((m) => m.model === current) ? current : "";
}

export function setupActivity() {
  onModelsChanged(fillModels);
  for (const [id, name] of [["#activity-model", "model"], ["#activity-status", "status"]]) {
    $(id).addEventListener("change", (event) => {
      filters[name] = event.currentTarget.value;
      $("#activity-table tbody").replaceChildren();
      shown = new Set();
      reload();
    });
  }
  $("#activity-more").addEventListener("click", older);
  $("#activity-csv").addEventListener("click", download);
}

export function loadActivity() {
  return reload();
}
