// The Forward view: one column per layer with each channel's output as a heatmap tile (for a graph,
// columns by depth with the edges drawn); click a unit to see the numbers that made it (the server
// lays them out from the engine's arrays: an Add's addends, the input a concatenated channel came from).
import { call, decode, element, short } from "./api.js";
import { numberTable, tiles } from "./draw.js";
import { edgesOf, graphColumns, pagedTiles } from "./graph.js";
import { showRanking } from "./input.js";

let current = null;   // the input id the columns show
let graphShown = false;   // the model is a graph: its units are nodes

export function setupForward() {
  document.addEventListener("input-ready", (event) => showForward(event.detail.input_id));
  document.addEventListener("model-changed", () => { if (current !== null) showForward(current); });
}

async function showForward(inputId) {
  const answer = await call("/api/trace", { input_id: inputId, gradients: false });
  if (!answer) return;
  current = inputId;
  graphShown = Boolean(answer.graph);
  showRanking(document.getElementById("topk"), answer);
  const predicted = document.getElementById("predicted");
  predicted.textContent = answer.class_names[answer.predicted];
  predicted.dataset.index = answer.predicted;
  const columns = document.getElementById("forward-layers");
  const input = decode(answer.input);
  const first = column("input", input, null);
  const boxes = answer.layers.map((layer) => {
    const pick = (position) => showUnit(layer.index, position);
    const title = `${layer.index}: ${layer.type}`, readsText = answer.graph ? reads(layer, answer.layers) : null;
    if (layer.output) return column(title, decode(layer.output), pick, layer.label, readsText);
    // a large output: its channels come page by page, when the column is seen
    const fetchPage = (start, count) => call("/api/maps", { input_id: inputId, node: layer.index, what: "output", start, count });
    return column(title, null, pick, layer.label, readsText, pagedTiles(layer.output_paged, fetchPage, pick), layer.output_paged.shape);
  });
  if (!answer.graph) {
    columns.replaceChildren(first, ...boxes);
    return;
  }
  // a graph: columns by depth, edges from each node's inputs
  columns.replaceChildren(graphColumns([{ key: -1, depth: -1, element: first },
    ...answer.layers.map((layer, k) => ({ key: layer.index, depth: layer.depth, element: boxes[k] }))], edgesOf(answer.layers)));
}

// "reads 3: Conv2D, input": the values a graph node takes
export function reads(layer, layers) {
  return layer.inputs.map((s) => (s < 0 ? "input" : `${s}: ${layers[s].type}`)).join(", ");
}

function column(title, array, onPick, label = "", readsText = null, paged = null, shape = null) {
  const merge = /^\d+: (Add|Concatenate|Multiply)$/.test(title);
  return element("div", { class: merge ? "column merge" : "column", title: label },
    element("h3", { text: title }),
    ...(readsText ? [element("div", { class: "reads", text: `reads ${readsText}` })] : []),
    element("div", { class: "shape", text: `(${(shape || array.shape).join(", ")})` }),
    paged || tiles(array, onPick));
}

async function showUnit(layer, position) {
  const detail = await call("/api/unit", { input_id: current, layer, position });
  if (!detail) return;
  const panel = document.getElementById("unit-detail");
  const parts = [
    element("h3", { text: `${graphShown ? "node" : "layer"} ${detail.layer}: ${detail.label}, unit [${detail.position.join(", ")}]` }),
    element("p", { class: "formula", text: detail.formula }),
    ...(detail.note ? [element("p", { class: "note", text: detail.note })] : []),
  ];
  if (detail.field) {
    const which = detail.channels > detail.channels_shown.length
      ? ` (the ${detail.channels_shown.length} of ${detail.channels} input channels that add the most: ${detail.channels_shown.join(", ")})` : "";
    parts.push(channelTables(`receptive field x (per input channel)${which}`, detail.field),
      channelTables("kernel weight", detail.kernel), channelTables("x * weight", detail.products),
      element("p", { text: `bias ${short(detail.bias, 6)}` }));
  } else if (detail.window) {
    parts.push(element("div", { class: "caption", text: "the window (winner outlined)" }), numberTable(detail.window, detail.winner));
  } else if (detail.largest_terms) {
    const rows = detail.largest_terms.map((k) => element("tr", {},
      element("td", { text: `x[${k}] = ${short(detail.inputs[k])}` }), element("td", { text: `w = ${short(detail.weights[k])}` }),
      element("td", { text: `x*w = ${short(detail.products[k])}` })));
    parts.push(element("div", { class: "caption", text: `the largest of ${detail.inputs.length} terms` }),
      element("table", { class: "numbers" }, ...rows));
  } else if (detail.terms && detail.source_input !== undefined) {          // Concatenate
    const rows = detail.terms.map((term) => element("tr", { class: term.input === detail.source_input ? "source" : "" },
      element("td", { text: `input ${term.input} (${term.from})` }), element("td", { text: `positions ${term.span[0]}-${term.span[1]}` }),
      element("td", { text: term.value === null ? "" : short(term.value) })));
    parts.push(element("div", { class: "caption", text: `this channel comes from input ${detail.source_input}, ` +
      `its position [${detail.source_position.join(", ")}]` }), element("table", { class: "numbers concat-sources" }, ...rows));
  } else if (detail.terms) {                                                // Add, Multiply: the addends or factors
    const rows = detail.terms.map((term) => element("tr", {},
      element("td", { text: `input ${term.input} (${term.from})` }), element("td", { text: short(term.value, 8), title: String(term.value) })));
    parts.push(element("div", { class: "caption", text: detail.type === "Add" ? "the addends" : "the factors" }),
      element("table", { class: "numbers addends" }, ...rows));
  } else if (detail.channel_values) {                                      // LRN: its window of channels
    const [first] = detail.window_channels;
    const header = element("tr", {}, element("th", { text: "channel" }),
      ...detail.channel_values.map((_, k) => element("th", { text: String(first + k) })));
    const row = (name, values) => element("tr", {}, element("td", { text: name }),
      ...values.map((v) => element("td", { text: short(v), title: String(v) })));
    parts.push(element("div", { class: "caption", text: "x at this pixel in each channel of the window, and x^2" }),
      element("table", { class: "numbers lrn-window" }, header, row("x", detail.channel_values),
        row("x^2", detail.channel_squares)));
  } else if (detail.contributions) {                                       // ConvTranspose2D
    const rows = detail.contributions.map((term) => element("tr", {},
      element("td", { text: `input pixel [${term.pixel.join(", ")}]` }), element("td", { text: `tap [${term.tap.join(", ")}]` }),
      element("td", { text: short(term.value, 8) })));
    parts.push(element("div", { class: "caption", text: "the input pixels that reach this cell (summed over their channels)" }),
      element("table", { class: "numbers" }, ...rows));
  } else if (detail.logits) {
    parts.push(element("div", { class: "caption", text: "logits z and exp(z - max z)" }), numberTable([detail.logits, detail.exps]));
  }
  parts.push(element("p", {}, "sum of the terms: ",
    element("span", { id: "unit-sum", "data-value": String(detail.sum), text: short(detail.sum, 8) }),
    "; the value in the feature map: ",
    element("span", { id: "unit-value", "data-value": String(detail.value), text: short(detail.value, 8) })));
  panel.replaceChildren(...parts);
  panel.hidden = false;
}

function channelTables(caption, channels) {
  return element("div", { class: "channel-tables" }, element("div", { class: "caption", text: caption }),
    ...channels.map((rows) => numberTable(rows)));
}
