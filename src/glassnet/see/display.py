"""Rich display of a trace in notebooks (``Trace._repr_html_``).

Jupyter calls ``_repr_html_`` when an object ends a cell; a terminal keeps the plain text. Small
arrays are shown whole (every value, as the engine holds it); larger ones as a heatmap picture
(when Pillow is installed) with their statistics. Every string from the model is escaped. A model's
own table lives in ``glassnet.models.summary`` and a fit history's curves in ``glassnet.training.history``.
"""
import base64
import html
import io

import numpy as np

WHOLE = 64          # arrays up to this many values are shown as tables of numbers
MAP_SIDE = 96       # pixels: about the longer side of each map in a heatmap
MOSAIC_WIDTH = 900  # pixels: the widest a row of maps may grow
# inline styles, because notebook viewers and documentation themes drop or override <style> blocks
TABLE_STYLE = "border-collapse:collapse;margin:2px 0 10px"
CELL_STYLE = "padding:1px 10px;text-align:right;font-family:monospace;border:1px solid #ddd"


def array_html(label, array):
    """One array: its label and shape, then the values (small) or a heatmap and statistics (large)."""
    array = np.asarray(array)
    head = f"<div><b>{html.escape(label)}</b> <code>shape {tuple(array.shape)}</code></div>"
    if array.size <= WHOLE:
        grid = np.squeeze(array) if array.ndim > 2 else array
        grid = np.atleast_2d(grid) if grid.ndim < 2 else grid.reshape(grid.shape[0], -1)
        cells = "".join("<tr>" + "".join(f"<td style='{CELL_STYLE}' title='{v!r}'>{v:.6g}</td>" for v in row.tolist()) + "</tr>"
                        for row in grid + 0.0)                      # + 0.0 turns -0.0 into 0.0
        return head + f"<table class='glassnet-array' style='{TABLE_STYLE}'>{cells}</table>"
    values = array.astype(np.float64)
    stats = (f"<div>min {values.min():.6g} · max {values.max():.6g} · mean {values.mean():.6g} · "
             f"norm {np.linalg.norm(values):.6g} · {array.size:,} values</div>")
    picture = heatmap_png(values)
    image = f"<img alt='{html.escape(label)}' src='data:image/png;base64,{picture}'>" if picture else ""
    return head + image + stats


def heatmap_png(values, grey=False):
    """A (..., H, W) array as one PNG (maps side by side, blue-white-red around 0; ``grey``: black to white
    from the least to the largest value), base64; None without Pillow."""
    try:
        from PIL import Image
    except ImportError:
        return None
    planes = values.reshape(-1, *values.shape[-2:]) if values.ndim >= 2 else values.reshape(1, 1, -1)
    planes = planes[:32]                                            # at most 32 maps side by side
    count, H, W = planes.shape
    mosaic = np.zeros((H, count * (W + 1) - 1))
    for k, plane in enumerate(planes):
        mosaic[:, k * (W + 1):k * (W + 1) + W] = plane
    if grey:
        low, span = float(mosaic.min()), float(np.ptp(mosaic)) or 1.0
        rgb = np.repeat((255 * (mosaic - low) / span)[..., None], 3, axis=-1).round().astype(np.uint8)
    else:
        limit = float(np.max(np.abs(mosaic))) or 1.0
        t = mosaic / limit                                          # in [-1, 1]
        red = np.where(t > 0, 255, 255 * (1 + t))
        blue = np.where(t < 0, 255, 255 * (1 - t))
        green = 255 * (1 - np.abs(t))
        rgb = np.stack([red, green, blue], axis=-1).round().astype(np.uint8)
    zoom = max(1, min(MAP_SIDE // max(H, W), MOSAIC_WIDTH // mosaic.shape[1]))   # each map ~MAP_SIDE px
    image = Image.fromarray(rgb).resize((mosaic.shape[1] * zoom, mosaic.shape[0] * zoom), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _from(label, source):
    return label if source == "input" else f"{label} from {source}"


def trace_html(record):
    """A trace: each layer collapsible, forward arrays, backward arrays, the update; the loss in between."""
    chain = all(len(step.sources) == 1 and not step.grad_parts for step in record.steps)
    parts = ["<div class='glassnet-trace'>", array_html("input", record.steps[0].input) if chain and record.steps else ""]
    for step in record.steps:
        inputs = step.input if step.merges else [step.input]
        input_grads = step.grad_input if step.merges else [step.grad_input]
        inner = [] if chain else [array_html(_from("input", source), value)
                                  for source, value in zip(step.sources, inputs)]
        inner += [array_html(key, value) for key, value in step.params_before.items()]
        inner.append(array_html("output", step.output))
        inner += [array_html(f"dL/d(output), part {k} (from reader {k})", part)
                  for k, part in enumerate(step.grad_parts or (), 1)]
        inner.append(array_html("dL/d(output)" + (" = the sum of the parts" if step.grad_parts else ""),
                                step.grad_output))
        inner += [array_html(f"dL/d({key})", value) for key, value in step.param_grads.items()]
        inner += [array_html(_from("dL/d(input)", source), value)
                  for source, value in zip(step.sources, input_grads) if value is not None]
        inner += [array_html(f"updated {key}", value) for key, value in step.params_after.items()]
        title = f"layer {step.index}" if chain else f"node {step.index}"
        reads = "" if chain else f" &larr; {html.escape(', '.join(step.sources))}"
        parts.append(f"<details><summary>{title}: {html.escape(step.layer)}{reads}</summary>"
                     f"{''.join(inner)}</details>")
    parts.append(f"<div><b>{html.escape(record.loss_name)}</b> = {record.loss!r}"
                 + (f" · then {html.escape(record.optimizer)}" if record.optimizer else "") + "</div></div>")
    return "".join(parts)
