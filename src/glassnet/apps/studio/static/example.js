// The Worked example view: seed 000's network (5x5 image, 2x2 kernel, ReLU, max pool, dense,
// sigmoid, binary cross-entropy, one SGD step) step by step, then where the seed went wrong.
// Every number is from the server's trace of that network (the same facts as `glassnet explain`).
import { call, element, short } from "./api.js";
import { numberTable } from "./draw.js";

let cards = [];
let shown = 0;

export function setupExample() {
  document.addEventListener("view-shown", (event) => { if (event.detail === "example" && !cards.length) load(); });
  document.getElementById("example-prev").addEventListener("click", () => show(shown - 1));
  document.getElementById("example-next").addEventListener("click", () => show(shown + 1));
}

// A nested list with its batch-free shape squeezed to at most 2-D for a table.
function matrix(value) {
  let v = value;
  while (Array.isArray(v) && v.length === 1 && Array.isArray(v[0])) v = v[0];
  if (Array.isArray(v) && Array.isArray(v[0]) && Array.isArray(v[0][0])) v = v.flat();
  return numberTable(Array.isArray(v) ? v : [v]);
}

function card(title, text, ...tables) {
  return element("section", { class: "card" }, element("h3", { text: title }), element("p", { text }),
    ...tables.map(([caption, value]) => element("div", { class: "labelled" }, element("div", { class: "caption", text: caption }), matrix(value))));
}

async function load() {
  const example = await call("/api/example");
  if (!example) return;
  const steps = example.steps;
  const conv = steps[0];
  cards = [card("1. The input and the weights", "A 5x5 image, one 2x2 kernel with bias 1, and a dense layer with weights [1, 1, -1, 1] and bias 0.",
    ["image", conv.input], ["kernel", conv.params_before.weight], ["conv bias", conv.params_before.bias], ["dense weight", steps[4].params_before.weight])];
  const forwardText = ["Slide the kernel over the image: each output is the sum of a 2x2 patch times the kernel, plus the bias.",
    "ReLU keeps positive values and turns negatives into 0.", "Max pooling keeps the largest value of each 2x2 window.",
    "Flatten lays the 2x2 map out as a vector of 4, row by row.", "The dense layer: sum of inputs times weights, plus the bias.",
    "Sigmoid squashes the result into (0, 1): the prediction."];
  steps.forEach((step, i) => cards.push(card(`${i + 2}. Forward through ${step.label}`, forwardText[i] || "", ["input", step.input], ["output", step.output])));
  cards.push(card(`${cards.length + 1}. The loss`, `Binary cross-entropy against target 1, in natural log: ${example.loss} (the seed printed log10: ${example.mistakes.loss_log10}). Its gradient with respect to the prediction:`,
    ["dL/d(prediction)", example.grad_prediction]));
  steps.slice().reverse().forEach((step) => {
    const tables = [["dL/d(output), arriving from above", step.grad_output]];
    for (const [key, grad] of Object.entries(step.param_grads)) tables.push([`dL/d(${key})`, grad]);
    tables.push(["dL/d(input), passed down", step.grad_input]);
    cards.push(card(`${cards.length + 1}. Backward through ${step.label}`, "The chain rule: the gradient from above times this layer's local derivative.", ...tables));
  });
  cards.push(card(`${cards.length + 1}. One SGD step, learning rate ${example.lr}`, "Each weight moves against its gradient: w - lr * dL/dw.",
    ["kernel after", conv.params_after.weight], ["conv bias after", conv.params_after.bias], ["dense weight after", steps[4].params_after.weight]));
  const m = example.mistakes;
  cards.push(card(`${cards.length + 1}. What seed 000 got wrong`,
    `It sent the dense layer's weight gradient (delta * a_flatten) down into the pooling layer instead of dL/d(a_flatten) = delta * weight. Its dense update is right; everything below is not. Its conv bias became ${short(m.seed_bias, 8)}; the right value is ${short(m.correct_bias, 8)}. It also printed the loss with log10 (${short(m.loss_log10, 8)}) while differentiating the natural log (${short(m.loss, 8)}).`,
    ["seed's gradient into the pool (wrong)", m.wrong_pool_grad], ["correct dL/d(a_flatten)", m.correct_pool_grad],
    ["seed's updated kernel (wrong)", m.seed_kernel], ["correct updated kernel (PyTorch agrees)", m.correct_kernel]));
  cards.forEach((c) => { c.hidden = true; });
  document.getElementById("example-cards").replaceChildren(...cards);
  show(0);
}

function show(index) {
  if (!cards.length) return;
  shown = Math.max(0, Math.min(cards.length - 1, index));
  cards.forEach((c, i) => { c.hidden = i !== shown; });
  document.getElementById("example-position").textContent = `step ${shown + 1} of ${cards.length}`;
}
