// The dashboard's start: the tabs, the key prompt, and GET /api/events, which every tab
// follows (a snapshot of the models first, then one event per change; nothing polls).

import { loadActivity, onRequest as activityRequest, setupActivity } from "./activity.js";
import { call, currentKey, errorOf, forgetKey, keepOpen, onKeyNeeded, readEvents, useKey } from "./api.js";
import { $ } from "./dom.js";
import { addEvent, setupEvents } from "./events.js";
import { setupLogs, startLogs } from "./logs.js";
import * as models from "./models.js";
import { setupPlayground } from "./playground.js";
import { setupQueue } from "./queue.js";
import { onRequest as routesRequest, setupRoutes, showRoutes } from "./routes.js";

const TABS = ["models", "activity", "logs", "routes", "queue", "playground", "events"];

function showTab(wanted) {
  const name = TABS.includes(wanted) ? wanted : "models";
  for (const section of document.querySelectorAll("main > .tab")) section.hidden = section.dataset.tab !== name;
  for (const link of document.querySelectorAll("#tabs [data-tab]")) {
    link.setAttribute("aria-selected", String(link.dataset.tab === name));
  }
  if (name === "logs") startLogs();
  showRoutes(name === "routes");
}

// ---- the key prompt ----------------------------------------------------------------------

function setupKeyPrompt() {
  onKeyNeeded((refused) => {
    $("#key-message").textContent = refused
      ? "That key was not accepted. Try another one."
      : "This swapgate asks for an API key. It is kept for this browser tab only.";
    $("#key-prompt").hidden = false;
    $("#key-input").focus();
  });
  $("#key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("#key-input").value.trim();
    if (!key) return;
    $("#key-input").value = "";
    $("#key-prompt").hidden = true;
    $("#forget-key").hidden = false;
    useKey(key);
  });
  $("#forget-key").hidden = !currentKey();
  $("#forget-key").addEventListener("click", () => {
    forgetKey();
    location.reload();
  });
}

// ---- the event stream --------------------------------------------------------------------

let stream = null; // AbortController of the open event stream
let loadedActivity = false;

function dispatch(kind, event) {
  if (kind === "snapshot") {
    models.setSnapshot(event.models); // the first message of every connection
    if (!loadedActivity) {
      loadedActivity = true;
      loadActivity(); // after the models, so their TTL countdowns can start from it
    }
    return;
  }
  if (kind === "state") models.onState(event);
  else if (kind === "queue") models.onQueue(event);
  else if (kind === "memory") models.onMemory(event);
  else if (kind === "request") {
    models.onRequest(event.record);
    activityRequest(event.record);
    routesRequest(event.record);
  } else if (kind === "config_reloaded" && event.outcome === "applied") {
    setTimeout(openEvents, 0); // a new connection brings a snapshot with the new models
  }
  addEvent(kind, event);
}

function live(state) {
  const badge = $("#live");
  badge.className = `live is-${typeof state === "string" ? state : "failed"}`;
  badge.textContent = state === "live" ? "live" : state === "retrying" ? "reconnecting" : state.message;
}

function openEvents() {
  if (stream) stream.abort();
  stream = new AbortController();
  const { signal } = stream;
  keepOpen(
    async (connected) => {
      const response = await call("/api/events", { signal });
      if (!response.ok) throw await errorOf(response);
      await readEvents(response, (kind, data) => {
        dispatch(kind, JSON.parse(data));
        if (kind === "snapshot") connected(); // "live" once the page shows the snapshot
      });
    },
    signal,
    live,
  );
}

setupKeyPrompt();
models.setupModels();
setupActivity();
setupLogs();
setupRoutes();
setupQueue();
setupPlayground();
setupEvents();
window.addEventListener("hashchange", () => showTab(location.hash.slice(1)));
showTab(location.hash.slice(1));
openEvents();
