// The Train view: choose a dataset, architecture and settings, train in the server's background
// thread, and watch it through server-sent events: loss and accuracy per batch, the first layer's
// filters, gradient norms and dead-ReLU fractions, the learning rate a schedule sets. Pause, resume, stop,
// save, use the model.
import { call, decode, element, short } from "./api.js";
import { lineChart } from "./draw.js";
import { parameterPicture } from "./backward.js";

let stream = null;
let curves = { loss: [], accuracy: [], lr: [] };

export async function setupTrain() {
  const options = await call("/api/train/options");
  if (!options) return;
  const dataset = document.getElementById("train-dataset");
  dataset.replaceChildren(...options.datasets.map((d) => element("option", { value: d.name, text: d.available.startsWith("available") ? d.name : `${d.name} (${d.available})`, title: d.available })));
  document.getElementById("train-arch").replaceChildren(...options.architectures.map((a) => element("option", { value: a, text: a })));
  document.getElementById("train-optimizer").replaceChildren(...options.optimizers.map((o) => element("option", { value: o, text: o })));
  document.getElementById("train-schedule").replaceChildren(...options.schedules.map((s) => element("option", { value: s, text: s })));
  const defaults = () => {
    const chosen = options.datasets.find((d) => d.name === dataset.value).defaults;
    document.getElementById("train-arch").value = chosen.arch;
    document.getElementById("train-optimizer").value = chosen.optimizer;
    document.getElementById("train-epochs").value = chosen.epochs;
    document.getElementById("train-batch").value = chosen.batch_size;
    document.getElementById("train-lr").value = chosen.lr;
  };
  dataset.addEventListener("change", defaults);
  defaults();
  document.getElementById("train-start").addEventListener("click", start);
  for (const action of ["pause", "resume", "stop"]) {
    document.getElementById(`train-${action}`).addEventListener("click", () => call(`/api/train/${action}`, {}));
  }
  document.getElementById("train-use").addEventListener("click", async () => {
    if (await call("/api/train/use", {})) document.dispatchEvent(new CustomEvent("model-loaded"));
  });
  document.getElementById("train-save").addEventListener("click", async () => {
    const answer = await call("/api/train/save", { name: document.getElementById("train-save-name").value });
    if (answer) document.getElementById("train-saved").textContent = `saved as ${answer.saved}`;
  });
  const info = await call("/api/model");
  if (info && info.job) listen();   // after a reload: the job's events replay from the first
}

async function start() {
  const value = (id) => document.getElementById(id).value;
  const settings = { dataset: value("train-dataset"), arch: value("train-arch"), optimizer: value("train-optimizer"),
    epochs: Number(value("train-epochs")), batch_size: Number(value("train-batch")), lr: Number(value("train-lr")),
    schedule: value("train-schedule") === "none" ? null : value("train-schedule"), warmup_epochs: Number(value("train-warmup")) };
  const answer = await call("/api/train", settings);
  if (!answer) return;
  curves = { loss: [], accuracy: [], lr: [] };
  document.getElementById("train-epochs-table").replaceChildren();
  document.getElementById("train-saved").textContent = "";
  listen();
}

function listen() {
  if (stream) stream.close();
  stream = new EventSource("/api/train/events");
  stream.onmessage = (message) => handle(JSON.parse(message.data));
  stream.addEventListener("end", () => { stream.close(); stream = null; });
}

function handle(event) {
  const state = document.getElementById("train-state");
  if (event.type === "state") {
    state.dataset.state = event.state;
    state.textContent = event.state + (event.description ? `: ${event.description}` : "")
      + (event.test_accuracy !== undefined && event.test_accuracy !== null ? `, test accuracy ${short(event.test_accuracy)}` : "")
      + (event.error ? `: ${event.error}` : "");
    if (["finished", "stopped"].includes(event.state)) document.dispatchEvent(new CustomEvent("training-done"));
  } else if (event.type === "batch") {
    curves.loss.push(event.loss);
    curves.accuracy.push(event.accuracy);
    curves.lr.push(event.lr);
    document.getElementById("train-progress").textContent = `epoch ${event.epoch}, batch ${event.batch}/${event.batches}`;
    drawSoon();
    showNorms(event);
  } else if (event.type === "epoch") {
    document.getElementById("train-epochs-table").append(element("tr", {},
      ...[`epoch ${event.epoch}/${event.epochs}`, `loss ${short(event.loss)}`, `accuracy ${short(event.accuracy)}`,
        `test loss ${short(event.val_loss)}`, `test accuracy ${short(event.val_accuracy)}`, `lr ${short(event.lr, 3)}`].map((text) => element("td", { text }))));
  } else if (event.type === "filters") {
    document.getElementById("train-filters").replaceChildren(element("div", { class: "caption", text: `layer ${event.layer} filters` }),
      parameterPicture(decode(event.weight)));
  }
}

let drawing = false;
function drawSoon() {
  if (drawing) return;
  drawing = true;
  requestAnimationFrame(() => {
    drawing = false;
    const chart = document.getElementById("loss-chart");
    chart.dataset.points = curves.loss.length;
    lineChart(chart, [{ values: curves.loss, colour: "#c0392b", label: "loss" },
      { values: curves.accuracy, colour: "#2471a3", label: "accuracy", max: 1 }]);
    const rates = document.getElementById("lr-chart");
    rates.dataset.points = curves.lr.length;
    lineChart(rates, [{ values: curves.lr, colour: "#27ae60", label: "learning rate" }]);
  });
}

function showNorms(event) {
  const bars = (entries, max) => entries.map(([name, value]) => element("div", { class: "bar-row" },
    element("span", { class: "name", text: name }),
    element("span", { class: "bar", style: `width: ${Math.round((160 * value) / (max || 1))}px` }),
    element("span", { class: "p", text: short(value, 3) })));
  const norms = Object.entries(event.grad_norms);
  document.getElementById("grad-norms").replaceChildren(...bars(norms, Math.max(...norms.map(([, v]) => v))));
  const dead = Object.entries(event.dead_relu).map(([layer, value]) => [`ReLU ${layer}`, value]);
  document.getElementById("dead-relu").replaceChildren(...bars(dead, 1));
}
