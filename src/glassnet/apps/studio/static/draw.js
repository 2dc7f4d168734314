// Arrays drawn as heatmaps, number tables and line charts. Nothing here computes a model value:
// it only paints what the server sent.
import { element, short } from "./api.js";

// Colour of v on a scale: signed data blue (negative) - white - red (positive) around 0;
// non-negative data white -> black, like ink.
function colour(v, limit, signed) {
  const t = limit > 0 ? Math.max(-1, Math.min(1, v / limit)) : 0;
  if (!signed) {
    const level = Math.round(255 * (1 - t));
    return [level, level, level];
  }
  const fade = Math.round(255 * (1 - Math.abs(t)));
  return t >= 0 ? [255, fade, fade] : [fade, fade, 255];
}

export function scaleOf(values) {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) { if (v < lo) lo = v; if (v > hi) hi = v; }
  return { limit: Math.max(Math.abs(lo), Math.abs(hi)), signed: lo < 0 };
}

// One (h, w) plane of `values` starting at `offset` as a canvas of h x w pixels shown `zoom` times larger.
export function heatmap(values, offset, h, w, scale, zoom) {
  const canvas = element("canvas", { width: w, height: h, class: "tile" });
  canvas.style.width = `${w * zoom}px`;
  canvas.style.height = `${h * zoom}px`;
  const context = canvas.getContext("2d");
  const image = context.createImageData(w, h);
  for (let i = 0; i < h * w; i++) {
    const [r, g, b] = colour(values[offset + i], scale.limit, scale.signed);
    image.data.set([r, g, b, 255], 4 * i);
  }
  context.putImageData(image, 0, 0);
  return canvas;
}

// The (row, col) of a click on a tile of h x w cells.
export function cellAt(event, canvas, h, w) {
  const box = canvas.getBoundingClientRect();
  const row = Math.min(h - 1, Math.floor(((event.clientY - box.top) / box.height) * h));
  const col = Math.min(w - 1, Math.floor(((event.clientX - box.left) / box.width) * w));
  return [row, col];
}

// Outline the tile last clicked (one on the page at a time).
function markPicked(canvas) {
  document.querySelectorAll(".tile.picked").forEach((tile) => tile.classList.remove("picked"));
  canvas.classList.add("picked");
}

// An array of shape (C, H, W), (H, W) or (F,) as tiles: one per channel; a vector as a near-square grid.
// onPick(position) is called with [c, row, col] or [k] when a cell is clicked; sharedScale (from scaleOf)
// colours several arrays alike, so that they can be compared.
export function tiles(array, onPick, zoomFor = 2, sharedScale = null) {
  const { shape, values } = array;
  const scale = sharedScale || scaleOf(values);
  const box = element("div", { class: "tiles" });
  if (shape.length === 3 || shape.length === 2) {
    const [C, H, W] = shape.length === 3 ? shape : [1, ...shape];
    const zoom = Math.max(1, Math.round((zoomFor * 28) / Math.max(H, W)));
    for (let c = 0; c < C; c++) {
      const canvas = heatmap(values, c * H * W, H, W, scale, zoom);
      canvas.dataset.channel = c;
      if (onPick) canvas.addEventListener("click", (e) => {
        markPicked(canvas);
        onPick(shape.length === 3 ? [c, ...cellAt(e, canvas, H, W)] : cellAt(e, canvas, H, W));
      });
      box.append(canvas);
    }
    return box;
  }
  const n = values.length;
  const width = n <= 16 ? 1 : Math.ceil(Math.sqrt(n));
  const height = Math.ceil(n / width);
  const padded = new Float64Array(width * height).fill(0);
  padded.set(values);
  const zoom = n <= 16 ? 14 : Math.max(3, Math.round(112 / Math.max(width, height)));
  const canvas = heatmap(padded, 0, height, width, scale, zoom);
  canvas.classList.add("vector");
  if (onPick) canvas.addEventListener("click", (e) => {
    const [row, col] = cellAt(e, canvas, height, width);
    const k = row * width + col;
    if (k < n) { markPicked(canvas); onPick([k]); }
  });
  box.append(canvas);
  return box;
}

// An 8-bit page of channels from /api/maps ({shape, limit, signed, data}) back to approximate values
// on the whole array's colour scale: {array: {shape, values}, scale}.
export function fromLevels(page) {
  const bytes = Uint8Array.from(atob(page.data), (c) => c.charCodeAt(0));
  const values = new Float64Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    values[i] = page.signed ? (bytes[i] / 127.5 - 1) * page.limit : (bytes[i] / 255) * page.limit;
  }
  return { array: { shape: page.shape, values }, scale: { limit: page.limit, signed: page.signed } };
}

// A small 2-D (or 1-D) nested list of numbers as a table; `mark` = [row, col] to highlight.
export function numberTable(rows, mark = null) {
  const table = element("table", { class: "numbers" });
  const grid = Array.isArray(rows[0]) ? rows : [rows];
  grid.forEach((row, i) => {
    const tr = element("tr");
    row.forEach((v, j) => {
      const cell = element("td", { text: v === null ? "pad" : short(v), title: v === null ? "padding" : String(v) });
      if (mark && mark[0] === i && mark[1] === j) cell.classList.add("winner");
      tr.append(cell);
    });
    table.append(tr);
  });
  return table;
}

// Line chart of several series on one canvas; each series {values, colour, label, max?}.
export function lineChart(canvas, series) {
  const context = canvas.getContext("2d");
  const { width, height } = canvas;
  context.clearRect(0, 0, width, height);
  context.strokeStyle = "#ccc";
  context.strokeRect(30.5, 10.5, width - 40, height - 30);
  series.forEach((s, index) => {
    const values = s.values.filter((v) => v !== null && Number.isFinite(v));
    if (!values.length) return;
    const top = s.max ?? Math.max(...values);
    context.strokeStyle = s.colour;
    context.beginPath();
    let started = false;
    s.values.forEach((v, i) => {
      if (v === null || !Number.isFinite(v)) return;
      const x = 31 + ((width - 42) * i) / Math.max(1, s.values.length - 1);
      const y = 10 + (height - 31) * (1 - v / (top || 1));
      if (started) context.lineTo(x, y); else context.moveTo(x, y);
      started = true;
    });
    context.stroke();
    context.fillStyle = s.colour;
    context.fillText(`${s.label} ${short(values[values.length - 1])}`, 36 + 120 * index, height - 6);
  });
}
