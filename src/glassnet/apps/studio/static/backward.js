// The Backward view: the loss for a chosen target class, dL/d(output) of every layer (for a graph, by
// depth with the edges, and at a fan-out the parts that were summed), the parameter gradients and the
// input gradient (saliency); one SGD step with its before and after; revert; save.
import { call, decode, element, short } from "./api.js";
import { heatmap, scaleOf, tiles } from "./draw.js";
import { showRanking } from "./input.js";
import { edgesOf, graphColumns, pagedTiles } from "./graph.js";
import { reads } from "./forward.js";

let inputId = null;

export function setupBackward() {
  document.addEventListener("input-ready", (event) => { inputId = event.detail.input_id; fillTargets(document.getElementById("target"), event.detail); refresh(); });
  document.addEventListener("model-changed", refresh);
  document.addEventListener("view-shown", (event) => { if (event.detail === "backward") refresh(); });
  document.getElementById("target").addEventListener("change", refresh);
  document.getElementById("step").addEventListener("click", step);
  document.getElementById("revert").addEventListener("click", async () => {
    if (await call("/api/revert", {})) { document.getElementById("step-result").replaceChildren(); changed(); }
  });
  document.getElementById("save").addEventListener("click", async () => {
    const answer = await call("/api/save", { name: document.getElementById("save-name").value });
    if (answer) document.getElementById("save-result").textContent = `saved as ${answer.saved}`;
  });
}

// A select of the model's classes, "the predicted class" first (filled once per model).
export function fillTargets(select, prediction) {
  if (select.options.length === prediction.class_names.length + 1) return;
  select.replaceChildren(element("option", { value: "", text: "the predicted class" }),
    ...prediction.class_names.map((name, i) => element("option", { value: String(i), text: name })));
}

function target() {
  const value = document.getElementById("target").value;
  return value === "" ? null : Number(value);
}

function visible() {
  return !document.getElementById("view-backward").hidden;
}

async function refresh() {
  if (inputId === null || !visible()) return;
  const answer = await call("/api/trace", { input_id: inputId, target: target(), gradients: true });
  if (!answer) return;
  const loss = document.getElementById("loss");
  loss.textContent = `${answer.loss_name} against class ${answer.class_names[answer.target]}: ${short(answer.loss, 8)}`;
  loss.dataset.value = String(answer.loss);
  const columns = document.getElementById("backward-layers");
  const view = (layer, what, message, scale = null) => message      // whole, or paged from the server
    ? tiles(decode(message), null, 2, scale)
    : pagedTiles(layer[`${what}_paged`] || layer.grad_parts_paged, (start, count) => call("/api/maps",
      { input_id: inputId, target: answer.target, node: layer.index, what, start, count }), null);
  const boxes = answer.layers.map((layer) => {
    const parts = [element("h3", { text: `${layer.index}: ${layer.type}` })];
    if (answer.graph) parts.push(element("div", { class: "reads", text: `reads ${reads(layer, answer.layers)}` }));
    if (layer.grad_parts) {         // read by several nodes: its gradient is the sum of theirs
      const whole = layer.grad_output && layer.grad_parts.every((part) => part.grad);
      const common = whole ? scaleOf([layer.grad_output, ...layer.grad_parts.map((part) => part.grad)]
        .flatMap((message) => Array.from(decode(message).values))) : null;                     // one colour scale
      parts.push(element("div", { class: "caption", text: `dL/d(output) = the sum of ${layer.grad_parts.length} parts` +
        (whole ? " (one colour scale)" : "") }),
        element("div", { class: "fan-row" },
          element("div", {}, element("div", { class: "caption", text: "sum" }), view(layer, "grad_output", layer.grad_output, common)),
          ...layer.grad_parts.map((part, k) => element("div", { class: "parts" },
            element("div", { class: "caption", text: `from ${part.from}` }),
            part.grad ? tiles(decode(part.grad), null, 2, common) : pagedTiles(part.grad_paged, (start, count) => call("/api/maps",
              { input_id: inputId, target: answer.target, node: layer.index, what: `grad_part ${k}`, start, count }), null)))));
    } else {
      parts.push(element("div", { class: "caption", text: "dL/d(output)" }), view(layer, "grad_output", layer.grad_output));
    }
    for (const [key, grad] of Object.entries(layer.param_grads)) {
      parts.push(element("div", { class: "caption", text: `dL/d(${key})` }), pictureOrSummary(grad));
    }
    return element("div", { class: layer.grad_parts ? "column fan-out" : "column", title: layer.label }, ...parts);
  });
  if (answer.graph) {
    columns.replaceChildren(graphColumns(answer.layers.map((layer, k) => ({ key: layer.index, depth: layer.depth, element: boxes[k] })),
      edgesOf(answer.layers).filter(([from]) => from >= 0)));
  } else {
    columns.replaceChildren(...boxes.reverse());
  }
  const saliency = decode(answer.saliency);
  document.getElementById("saliency").replaceChildren(element("div", { class: "caption", text: "dL/d(input): which pixels move the loss" }),
    tiles(saliency, null, 4));
}

// A parameter array as a picture, or (too large to send whole) its shape and norm.
export function pictureOrSummary(message) {
  if (!message.paged) return parameterPicture(decode(message));
  const { shape, norm, min, max } = message.paged;
  return element("div", { class: "caption", text: `(${shape.join(", ")}): norm ${short(norm)}, from ${short(min)} to ${short(max)}` });
}

// A parameter array as one picture: a kernel bank (O, I, kh, kw) as an (O*kh) x (I*kw) mosaic,
// a matrix as itself, a vector as a strip.
export function parameterPicture(array) {
  const { shape, values } = array;
  const scale = scaleOf(values);
  if (shape.length === 4) {
    // filter o is a block of kh rows by I*kw columns (its input channels side by side);
    // blocks sit in a near-square grid with a one-cell gap (value 0: white)
    const [O, I, kh, kw] = shape;
    const across = Math.ceil(Math.sqrt(O)), down = Math.ceil(O / across);
    const blockH = kh + 1, blockW = I * kw + 1;
    const mosaic = new Float64Array(down * blockH * across * blockW);
    for (let o = 0; o < O; o++) for (let i = 0; i < I; i++) for (let u = 0; u < kh; u++) for (let v = 0; v < kw; v++) {
      const row = Math.floor(o / across) * blockH + u, col = (o % across) * blockW + i * kw + v;
      mosaic[row * across * blockW + col] = values[((o * I + i) * kh + u) * kw + v];
    }
    const zoom = Math.max(1, Math.round(160 / Math.max(down * blockH, across * blockW)));
    return heatmap(mosaic, 0, down * blockH, across * blockW, scale, zoom);
  }
  if (shape.length === 2) return heatmap(values, 0, shape[0], shape[1], scale, Math.max(1, Math.round(96 / Math.max(...shape))));
  return heatmap(values, 0, 1, shape[0], scale, Math.max(2, Math.round(96 / shape[0])));
}

async function step() {
  const lr = Number(document.getElementById("lr").value);
  const answer = await call("/api/step", { input_id: inputId, target: target(), lr });
  if (!answer) return;
  const result = document.getElementById("step-result");
  const rows = answer.layers.flatMap((layer) => Object.keys(layer.before).map((key) => element("div", { class: "step-row" },
    element("div", { class: "caption", text: `layer ${layer.index} ${key}: before, after, change = -lr * gradient (largest ${short(layer.largest_change[key])})` }),
    pictureOrSummary(layer.before[key]), pictureOrSummary(layer.after[key]), pictureOrSummary(layer.change[key]))));
  const lossLine = element("p", {}, `loss before `, element("span", { id: "loss-before", text: short(answer.loss_before, 8) }),
    `, after `, element("span", { id: "loss-after", text: short(answer.loss_after, 8) }),
    ` (SGD, lr ${answer.lr}, step ${answer.steps_taken}); new prediction: `,
    element("span", { id: "step-predicted", "data-index": answer.after.predicted, text: answer.after.class_names[answer.after.predicted] }));
  const bars = element("div", { class: "topk" });
  showRanking(bars, answer.after);
  result.replaceChildren(lossLine, bars, ...rows);
  changed();
}

function changed() {
  document.dispatchEvent(new CustomEvent("model-changed"));
}
