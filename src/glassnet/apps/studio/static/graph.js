// A graph model laid out for the page: nodes in columns by depth (the longest path from the input),
// edges as curves in an SVG drawn over the columns. Needs no layout library: depth columns suit
// chains and the series-parallel graphs of ResNet and Inception blocks. A chain is one row, as before.
import { element } from "./api.js";
import { fromLevels, tiles } from "./draw.js";

const SVG = "http://www.w3.org/2000/svg";

// boxes: [{key, depth, element}] (the input is key -1 at depth -1); edges: [[from key, to key]].
// Returns the container: one .depth column of boxes per depth, an SVG of edges over them.
export function graphColumns(boxes, edges) {
  const byDepth = new Map();
  for (const box of boxes) {
    if (!byDepth.has(box.depth)) byDepth.set(box.depth, []);
    byDepth.get(box.depth).push(box);
  }
  const container = element("div", { class: "graph" });
  for (const depth of [...byDepth.keys()].sort((a, b) => a - b)) {
    container.append(element("div", { class: "depth", "data-depth": String(depth) },
      ...byDepth.get(depth).map((box) => { box.element.dataset.node = String(box.key); return box.element; })));
  }
  const svg = document.createElementNS(SVG, "svg");
  svg.classList.add("edges");
  container.append(svg);
  const draw = () => drawEdges(container, svg, edges);
  requestAnimationFrame(draw);
  new ResizeObserver(draw).observe(container);
  return container;
}

function drawEdges(container, svg, edges) {
  const origin = container.getBoundingClientRect();
  svg.setAttribute("width", container.scrollWidth);
  svg.setAttribute("height", container.scrollHeight);
  const place = (key) => container.querySelector(`[data-node="${key}"]`)?.getBoundingClientRect();
  const paths = [];
  for (const [from, to] of edges) {
    const a = place(from), b = place(to);
    if (!a || !b) continue;
    const x1 = a.right - origin.left, y1 = a.top + 18 - origin.top;      // beside each box's title
    const x2 = b.left - origin.left, y2 = b.top + 18 - origin.top;
    const span = depthOf(container, to) - depthOf(container, from);
    const path = document.createElementNS(SVG, "path");
    if (span > 1) {                // a shortcut past other columns: an arc over their tops
      const lift = Math.min(y1, y2) - 14 - 6 * Math.min(span, 4);
      path.setAttribute("d", `M${x1},${y1} C${x1 + 30},${lift} ${x2 - 30},${lift} ${x2},${y2}`);
      path.classList.add("shortcut");
    } else {
      const bend = Math.max(12, (x2 - x1) / 2);
      path.setAttribute("d", `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`);
    }
    path.dataset.from = String(from);
    path.dataset.to = String(to);
    paths.push(path);
  }
  svg.replaceChildren(...paths);
}

function depthOf(container, key) {
  return Number(container.querySelector(`[data-node="${key}"]`)?.closest(".depth")?.dataset.depth ?? 0);
}

// The edges of a trace or model answer: each node's inputs (-1: the input) to the node.
export function edgesOf(nodes) {
  return nodes.flatMap((node) => node.inputs.map((source) => [source, node.index]));
}

// A large array the server sends in pages (`paged`: its shape and range): channels `start ..` at a time,
// asked for when the column first comes into view; prev/next move through them. onPick gets the
// position in the whole array.
export function pagedTiles(description, fetchPage, onPick) {
  const box = element("div", { class: "paged" });
  const caption = element("div", { class: "caption" });
  const holder = element("div");
  const total = description.shape[0];
  let start = 0;
  const show = async () => {
    const page = await fetchPage(start, PAGE);
    if (!page) return;
    const { array, scale } = fromLevels(page);
    caption.textContent = `channels ${start}-${start + array.shape[0] - 1} of ${total} (8-bit; click for exact numbers)`;
    holder.replaceChildren(tiles(array, onPick ? (p) => onPick([p[0] + start, ...p.slice(1)]) : null, 2, scale));
  };
  const move = (delta) => element("button", { text: delta < 0 ? "prev" : "next", class: "page-button", onclick: () => {
    const next = start + delta * PAGE;
    if (next >= 0 && next < total) { start = next; show(); }
  } });
  box.append(caption, element("div", { class: "controls" }, move(-1), move(1)), holder);
  const seen = new IntersectionObserver((entries) => {
    if (entries.some((entry) => entry.isIntersecting)) { seen.disconnect(); show(); }
  });
  seen.observe(box);
  return box;
}

const PAGE = 16;
