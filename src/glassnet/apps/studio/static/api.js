// Talking to the studio server: JSON in and out, arrays decoded exactly, errors shown in one place.

// {"shape": [...], "data": base64 float64 little-endian} -> {shape, values: Float64Array}
export function decode(message) {
  const bytes = Uint8Array.from(atob(message.data), (c) => c.charCodeAt(0));
  return { shape: message.shape, values: new Float64Array(bytes.buffer) };
}

export function showError(message) {
  const banner = document.getElementById("error");
  banner.textContent = message;
  banner.hidden = !message;
}

// POST (body given) or GET a JSON route; resolves to the parsed reply, or null after showing the error.
export async function call(path, body, contentType = "application/json") {
  const options = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": contentType },
    body: contentType === "application/json" ? JSON.stringify(body) : body,
  };
  let reply;
  try {
    reply = await fetch(path, options);
  } catch (error) {
    showError(`the studio server cannot be reached (${error.message}); is 'glassnet studio' still running?`);
    return null;
  }
  const answer = await reply.json().catch(() => ({ error: `${reply.status} ${reply.statusText}` }));
  if (!reply.ok) {
    showError(answer.error || `${reply.status} ${reply.statusText}`);
    return null;
  }
  showError("");
  return answer;
}

// A short number for display; the full value goes in a title/data attribute beside it.
export function short(value, digits = 4) {
  if (value === null || value === undefined) return "";
  if (value === 0) return "0";
  const magnitude = Math.abs(value);
  return magnitude >= 1e-3 && magnitude < 1e5 ? String(Number(value.toPrecision(digits))) : value.toExponential(2);
}

export function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "style") node.style.cssText = value;  // through the CSSOM: allowed by the page's CSP
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}
