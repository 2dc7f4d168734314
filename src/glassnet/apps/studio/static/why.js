// The Why view: an attribution map over the drawn or dropped image for a chosen class and method; a click
// on a pixel asks the server for the numbers behind its value; the mistakes panel shows misclassified test
// images with their Grad-CAM. The page only paints what the server computed.
import { call, decode, element, short } from "./api.js";
import { cellAt, numberTable } from "./draw.js";
import { fillTargets } from "./backward.js";

let inputId = null;
let shown = null;          // the map on show: {method, target, map, input}

export function setupWhy() {
  document.addEventListener("input-ready", (event) => { inputId = event.detail.input_id; fillTargets(document.getElementById("why-target"), event.detail); refresh(); });
  document.addEventListener("view-shown", (event) => { if (event.detail === "why") refresh(); });
  for (const id of ["why-method", "why-target"]) document.getElementById(id).addEventListener("change", refresh);
  document.getElementById("why-overlay").addEventListener("click", pick);
  document.getElementById("why-mistakes").addEventListener("click", showMistakes);
}

function chosen() {
  const target = document.getElementById("why-target").value;
  return { method: document.getElementById("why-method").value, target: target === "" ? null : Number(target) };
}

async function refresh() {
  if (inputId === null || document.getElementById("view-why").hidden) return;
  const answer = await call("/api/why", { input_id: inputId, ...chosen() });
  if (!answer) return;
  shown = { ...answer, map: decode(answer.map), input: decode(answer.input) };
  const canvas = document.getElementById("why-overlay");
  overlay(canvas, shown.input, shown.map);
  canvas.dataset.method = answer.method;
  document.getElementById("why-caption").textContent = `${answer.method} for class ${answer.target}: sum of the map `
    + `${short(answer.sum, 6)}` + (answer.change !== undefined ? `; f(x) - f(black) = ${short(answer.change, 6)} (completeness)` : "");
  document.getElementById("why-pixel").replaceChildren(element("p", { text: "click a pixel of the map" }));
}

// The map summed over channels (C, H, W) or as it is (h, w), each cell's value at (row, col) of an H x W grid.
function mapValue(map, row, col, H, W) {
  if (map.shape.length === 3) {
    const [C, h, w] = map.shape;
    let total = 0;
    for (let c = 0; c < C; c++) total += map.values[(c * h + row) * w + col];
    return total;
  }
  const [h, w] = map.shape;
  return map.values[Math.min(h - 1, Math.floor((row * h) / H)) * w + Math.min(w - 1, Math.floor((col * w) / W))];
}

// The input in grey (its first channel, or the colours) under the map in red (> 0) and blue (< 0).
function overlay(canvas, input, map) {
  const [C, H, W] = input.shape;
  canvas.width = W; canvas.height = H;
  let limit = 0;
  for (let r = 0; r < H; r++) for (let c = 0; c < W; c++) limit = Math.max(limit, Math.abs(mapValue(map, r, c, H, W)));
  let lo = Infinity, hi = -Infinity;
  for (const v of input.values) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  const context = canvas.getContext("2d");
  const image = context.createImageData(W, H);
  for (let r = 0; r < H; r++) {
    for (let c = 0; c < W; c++) {
      const grey = (k) => 255 * (input.values[(k * H + r) * W + c] - lo) / ((hi - lo) || 1);
      const base = C === 3 ? [grey(0), grey(1), grey(2)] : [grey(0), grey(0), grey(0)];
      const t = limit > 0 ? mapValue(map, r, c, H, W) / limit : 0;
      const tint = t >= 0 ? [255, 0, 0] : [0, 0, 255];
      const a = 0.75 * Math.abs(t);
      image.data.set(base.map((v, k) => Math.round((1 - a) * v + a * tint[k])).concat([255]), 4 * (r * W + c));
    }
  }
  context.putImageData(image, 0, 0);
}

async function pick(event) {
  if (!shown) return;
  const [C, H, W] = shown.input.shape;
  const [row, col] = cellAt(event, event.currentTarget, H, W);
  let position;
  if (shown.map.shape.length === 3) {
    const [MC, h, w] = shown.map.shape;
    let best = 0;
    for (let c = 1; c < MC; c++) if (Math.abs(shown.map.values[(c * h + row) * w + col]) > Math.abs(shown.map.values[(best * h + row) * w + col])) best = c;
    position = [best, row, col];
  } else {
    const [h, w] = shown.map.shape;
    position = [Math.min(h - 1, Math.floor((row * h) / H)), Math.min(w - 1, Math.floor((col * w) / W))];
  }
  const detail = await call("/api/why/pixel", { input_id: inputId, method: shown.method, target: shown.target, position });
  if (!detail) return;
  const box = document.getElementById("why-pixel");
  box.dataset.position = JSON.stringify(detail.position);
  const parts = [element("p", { class: "formula", text: detail.formula }),
    element("p", { text: `value in the map ${short(detail.value, 8)}; the numbers below add up to ${short(detail.sum, 8)}` })];
  if (detail.path_gradients) parts.push(element("h3", { text: "gradient at this pixel along the path 0 -> x (weights below)" }),
    numberTable([detail.path_gradients, detail.weights]));
  if (detail.samples) parts.push(element("h3", { text: "gradient at this pixel for each noisy copy" }), numberTable(detail.samples));
  if (detail.windows) parts.push(element("h3", { text: `output ${short(detail.output, 6)} with the image whole; with each window set to 0:` }),
    numberTable(detail.windows.map((w) => [w.top, w.left, w.occluded])));
  if (detail.weights && !detail.path_gradients) parts.push(element("h3", { text: "channel weights w_c (top) and the maps A_c here (bottom)" }),
    numberTable([detail.weights, detail.activations]));
  box.replaceChildren(...parts);
}

async function showMistakes() {
  const answer = await call("/api/why/mistakes");
  if (!answer) return;
  const panel = document.getElementById("why-mistakes-panel");
  panel.replaceChildren(element("p", { text: `${answer.wrong} of the first ${answer.checked} ${answer.dataset} test images are misclassified; `
    + `the first ${answer.items.length}, each with the Grad-CAM of the class it chose:` }),
    ...answer.items.map((item) => {
      const canvas = element("canvas", { class: "mistake" });
      overlay(canvas, decode(item.input), decode(item.gradcam));
      return element("figure", {}, canvas, element("figcaption", { text: `#${item.index}: ${item.label}, said ${item.predicted}` }));
    }));
}
