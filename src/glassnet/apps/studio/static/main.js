// The studio page: tabs, the model line, and each view's set-up (one file per view).
import { call } from "./api.js";
import { setupInput } from "./input.js";
import { setupForward } from "./forward.js";
import { setupBackward } from "./backward.js";
import { setupTrain } from "./train.js";
import { setupExample } from "./example.js";
import { setupWhy } from "./why.js";

function showView(name) {
  for (const view of document.querySelectorAll(".view")) view.hidden = view.id !== `view-${name}`;
  for (const tab of document.querySelectorAll("nav button")) tab.classList.toggle("active", tab.dataset.view === name);
  document.dispatchEvent(new CustomEvent("view-shown", { detail: name }));
}

async function showModel() {
  const info = await call("/api/model");
  if (!info) return;
  const line = document.getElementById("model-line");
  const model = info.model;
  document.body.dataset.hasModel = Boolean(model);
  if (!model) {
    line.textContent = "No model loaded: train one in the Train view (it becomes the studio's model when it finishes).";
    return;
  }
  const shape = model.graph
    ? `a graph of ${model.layers.length} nodes (${model.layers.filter((l) => ["Add", "Concatenate", "Multiply"].includes(l.type)).length} merges)`
    : model.layers.map((l) => l.type).join(" > ");
  line.textContent = `${model.source}: ${shape}, ${model.parameters.toLocaleString()} parameters, ${model.dtype}`
    + (model.takes_images ? "" : " (not an image model: drawing is off)");
  document.getElementById("summary").textContent = model.summary;
}

document.querySelectorAll("nav button").forEach((tab) => tab.addEventListener("click", () => showView(tab.dataset.view)));
document.addEventListener("model-loaded", showModel);
document.addEventListener("training-done", showModel);
setupInput();
setupForward();
setupBackward();
setupExample();
setupWhy();
setupTrain();
showModel();
showView("see");
