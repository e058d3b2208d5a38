// The Routes tab: GET /api/routes, one table per rule with its variants (arms) side by side.
//
// Read when the tab is shown and, while it is, again after requests finish (at most every
// two seconds); "Reset statistics" starts them afresh.

import { getJson, post } from "./api.js";
import { $, el, notify, rate, seconds } from "./dom.js";

const METRICS = [
  ["Requests", (b) => String(b.requests)],
  ["Errors", errorsText],
  ["TTFT p50", (b) => seconds(b.ttft_s.p50)],
  ["TTFT p95", (b) => seconds(b.ttft_s.p95)],
  ["Duration p50", (b) => seconds(b.total_s.p50)],
  ["Duration p95", (b) => seconds(b.total_s.p95)],
  ["Tokens/s", (b) => rate(b.output_tokens_per_s)],
];
let visible = false;
let timer = null;

function errorsText(bucket) {
  const byStatus = Object.entries(bucket.errors);
  const total = byStatus.reduce((sum, [, n]) => sum + n, 0);
  if (!total) return "0";
  return `${total} (${byStatus.map(([status, n]) => `${status}×${n}`).join(", ")})`;
}

function ruleTable(name, rule) {
  const arms = Object.entries(rule.arms);
  const number = (text) => el("td", { className: "num" }, text);
  const head = el(
    "tr",
    {},
    el("th", {}, ""),
    el("th", { className: "num" }, "all"),
    ...arms.map(([arm]) => el("th", { className: "num" }, arm)),
  );
  const rows = METRICS.map(([label, value]) =>
    el(
      "tr",
      {},
      el("th", { scope: "row" }, label),
      number(value(rule)),
      ...arms.map(([, bucket]) => number(value(bucket))),
    ),
  );
  return el(
    "table",
    { className: "grid route", dataset: { route: name } },
    el("caption", {}, name),
    el("thead", {}, head),
    el("tbody", {}, ...rows),
  );
}

function note(text) {
  return el("p", { className: "muted" }, text);
}

async function load() {
  try {
    const stats = await getJson("/api/routes");
    $("#routes-since").textContent = `since ${new Date(stats.since).toLocaleString("en-GB")}`;
    const rules = Object.entries(stats.routes);
    const body = $("#routes-body");
    if (!rules.length) {
      body.replaceChildren(note("No request has matched a rule of the routes section yet."));
    } else {
      body.replaceChildren(...rules.map(([name, rule]) => ruleTable(name, rule)));
    }
  } catch (error) {
    $("#routes-body").replaceChildren(note(`Route statistics could not be read: ${error.message}`));
  }
}

export function onRequest(record) {
  if (!visible || !record.route || timer !== null) return;
  timer = setTimeout(() => {
    timer = null;
    load();
  }, 2000);
}

export function showRoutes(shown) {
  visible = shown;
  if (shown) load();
}

export function setupRoutes() {
  $("#routes-refresh").addEventListener("click", load);
  $("#routes-reset").addEventListener("click", async () => {
    try {
      await post("/api/routes/reset");
      await load();
    } catch (error) {
      notify(error.message);
    }
  });
}
