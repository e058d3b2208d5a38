// The Queue tab: models that requests wait for, how many, and why they wait.

import { $, cell, el } from "./dom.js";
import { modelList, onModelsChanged } from "./models.js";

function render(models) {
  const waiting = models.filter((model) => model.queued > 0);
  waiting.sort((a, b) => (a.queuePosition || 0) - (b.queuePosition || 0));
  $("#queue-table tbody").replaceChildren(
    ...waiting.map((model) =>
      el(
        "tr",
        { dataset: { model: model.model } },
        el("td", {}, el("strong", {}, model.model)),
        el("td", {}, el("span", { className: `state ${model.state}` }, model.state)),
        cell(model.queued, "num"),
        cell(model.queuePosition, "num"),
        cell(model.waitingFor || "its turn", "c-why"),
        cell(model.retryAfter ? `${model.retryAfter} s` : null, "num"),
      ),
    ),
  );
  $("#queue-empty").hidden = waiting.length > 0;
  $("#queue-table").hidden = waiting.length === 0;
  const total = waiting.reduce((sum, model) => sum + model.queued, 0);
  const badge = $("#queue-count");
  badge.textContent = String(total);
  badge.hidden = total === 0;
}

export function setupQueue() {
  onModelsChanged(render);
  render(modelList());
}
