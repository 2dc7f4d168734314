// The Input view: draw or drop an image; beside it the model's input exactly as the server
// prepared it, and the top-k probabilities. Every new input is announced as an "input-ready" event.
import { call, decode, element, short } from "./api.js";
import { tiles } from "./draw.js";

const DEBOUNCE_MS = 150;
let pending = null;      // debounce timer
let sequence = 0;        // newer drawings win over slower replies

export function setupInput() {
  const canvas = document.getElementById("pad");
  const context = canvas.getContext("2d");
  const pen = document.getElementById("pen-width");
  clear(context, canvas);
  let drawing = false;
  let last = null;
  const point = (event) => {
    const box = canvas.getBoundingClientRect();
    return [((event.clientX - box.left) * canvas.width) / box.width, ((event.clientY - box.top) * canvas.height) / box.height];
  };
  canvas.addEventListener("pointerdown", (event) => {
    drawing = true;
    canvas.setPointerCapture(event.pointerId);
    last = point(event);
    stroke(context, last, last, Number(pen.value));
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    const next = point(event);
    stroke(context, last, next, Number(pen.value));
    last = next;
    schedule(canvas);
  });
  const finish = () => { if (drawing) { drawing = false; send(canvas); } };
  canvas.addEventListener("pointerup", finish);
  canvas.addEventListener("pointercancel", finish);
  document.getElementById("clear").addEventListener("click", () => clear(context, canvas));

  const file = document.getElementById("file");
  file.addEventListener("change", () => { if (file.files.length) upload(file.files[0]); });
  const drop = document.getElementById("drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer.files.length) upload(event.dataTransfer.files[0]);
  });
}

function clear(context, canvas) {
  context.fillStyle = "#fff";
  context.fillRect(0, 0, canvas.width, canvas.height);
}

function stroke(context, from, to, width) {
  context.strokeStyle = "#000";
  context.lineWidth = width;
  context.lineCap = "round";
  context.beginPath();
  context.moveTo(...from);
  context.lineTo(...to);
  context.stroke();
}

function schedule(canvas) {
  clearTimeout(pending);
  pending = setTimeout(() => send(canvas), DEBOUNCE_MS);
}

function send(canvas) {
  clearTimeout(pending);
  canvas.toBlob((blob) => submit(blob, "drawing.png"), "image/png");
}

function upload(file) {
  submit(file, file.name);
}

async function submit(blob, name) {
  const mine = ++sequence;
  const type = blob.type || "application/octet-stream";
  const answer = await call("/api/predict", blob, type);
  if (!answer || mine !== sequence) return;
  showInput(answer);
  document.dispatchEvent(new CustomEvent("input-ready", { detail: answer }));
}

function showInput(answer) {
  const input = decode(answer.input);
  const seen = document.getElementById("model-input");
  seen.replaceChildren(tiles(input, null, 4), element("div", { class: "shape", text: `input (${input.shape.join(", ")})` }),
    element("div", { class: "caption", text: answer.note || "" }));
  showRanking(document.getElementById("topk"), answer);
  const predicted = document.getElementById("predicted");
  predicted.textContent = answer.class_names[answer.predicted];
  predicted.dataset.index = answer.predicted;
}

// Probability bars of the top-k classes.
export function showRanking(box, ranking) {
  box.replaceChildren(...ranking.top_k.map((entry) => element("div", { class: "bar-row", "data-class": entry.index },
    element("span", { class: "name", text: entry.class }),
    element("span", { class: "bar", style: `width: ${Math.round(entry.probability * 160)}px` }),
    element("span", { class: "p", text: short(entry.probability, 3), title: String(entry.probability) }))));
}
