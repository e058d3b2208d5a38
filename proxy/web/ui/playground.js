// The Playground tab: a chat with one model through POST /v1/chat/completions, streamed.
// Tokens show as they arrive; then the time to the first token and the decode speed.

import { call, errorOf, readEvents } from "./api.js";
import { $, el, notify, rate, seconds } from "./dom.js";
import { onModelsChanged } from "./models.js";

let messages = []; // the conversation so far, as the API takes it
let controller = null; // aborts the answer being streamed

function bubble(role, text) {
  const node = el(
    "div",
    { className: `bubble ${role}` },
    el("div", { className: "role" }, role),
    el("div", { className: "text" }, text),
  );
  const transcript = $("#play-transcript");
  transcript.append(node);
  transcript.scrollTop = transcript.scrollHeight;
  return node.querySelector(".text");
}

function busy(on) {
  $("#play-send").disabled = on;
  $("#play-stop").disabled = !on;
}

function statsText(startedAt, firstAt, endedAt, tokens) {
  if (firstAt === null) return `no tokens in ${seconds((endedAt - startedAt) / 1000)}`;
  const ttft = (firstAt - startedAt) / 1000;
  const decoding = (endedAt - firstAt) / 1000;
  const speed = tokens > 1 && decoding > 0 ? rate((tokens - 1) / decoding) : "—";
  const total = seconds((endedAt - startedAt) / 1000);
  return `TTFT ${seconds(ttft)} · ${speed} tokens/s · ${tokens} tokens · ${total} in all`;
}

async function send(model, text) {
  messages.push({ role: "user", content: text });
  bubble("user", text);
  const reply = bubble("assistant", "");
  reply.classList.add("streaming");
  controller = new AbortController();
  busy(true);
  $("#play-stats").textContent = "waiting for the first token…";
  const startedAt = performance.now();
  let firstAt = null;
  let pieces = 0;
  let usage = null;
  let answer = "";
  const body = JSON.stringify({ model, messages, stream: true, stream_options: { include_usage: true } });
  try {
    const response = await call("/v1/chat/completions", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body,
      signal: controller.signal,
    });
    if (!response.ok) throw await errorOf(response);
    await readEvents(response, (_name, data) => {
      if (data === "[DONE]") return;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message || "the model failed");
      if (chunk.usage) usage = chunk.usage;
      const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
      if (delta && delta.content) {
        if (firstAt === null) firstAt = performance.now();
        pieces += 1;
        answer += delta.content;
        reply.textContent = answer;
        $("#play-transcript").scrollTop = $("#play-transcript").scrollHeight;
      }
    });
    messages.push({ role: "assistant", content: answer });
    const tokens = usage && usage.completion_tokens ? usage.completion_tokens : pieces;
    $("#play-stats").textContent = statsText(startedAt, firstAt, performance.now(), tokens);
  } catch (error) {
    const stopped = error.name === "AbortError";
    reply.append(el("div", { className: "failed" }, stopped ? "(stopped)" : error.message));
    if (answer) messages.push({ role: "assistant", content: answer });
    $("#play-stats").textContent = stopped ? "stopped" : "failed";
  } finally {
    reply.classList.remove("streaming");
    busy(false);
    controller = null;
  }
}

function fillModels(models) {
  const select = $("#play-model");
  const current = select.value;
  select.replaceChildren(...models.map((m) => el("option", { value: m.model }, m.model)));
  if (models.some((m) => m.model === current)) select.value = current;
}

export function setupPlayground() {
  onModelsChanged(fillModels);
  const input = $("#play-input");
  $("#play-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    const model = $("#play-model").value;
    if (!text || controller) return;
    if (!model) {
      notify("Choose a model first.");
      return;
    }
    input.value = "";
    send(model, text);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("#play-form").requestSubmit();
  });
  $("#play-stop").addEventListener("click", () => controller && controller.abort());
  $("#play-clear").addEventListener("click", () => {
    if (controller) controller.abort();
    messages = [];
    $("#play-transcript").replaceChildren();
    $("#play-stats").textContent = "";
  });
}
