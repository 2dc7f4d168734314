"""What ``fit`` returns: the per-epoch history, a dict that also draws its own curves in a notebook.

The curves are inline SVG, so nothing here needs matplotlib; every label is escaped.
"""
import html

import numpy as np


def curves_svg(series, width=360, height=160):
    """Line chart of {label: [value per epoch]} as inline SVG (None values skipped)."""
    colours = ["#c0392b", "#2471a3", "#27ae60", "#8e44ad"]
    finite = [v for values in series.values() for v in values if v is not None and np.isfinite(v)]
    if not finite:
        return ""
    low, high = min(finite), max(finite)
    span = (high - low) or 1.0
    lines, legend = [], []
    for k, (label, values) in enumerate(series.items()):
        points = [(30 + (width - 40) * i / max(1, len(values) - 1), 10 + (height - 30) * (1 - (v - low) / span))
                  for i, v in enumerate(values) if v is not None and np.isfinite(v)]
        if not points:
            continue
        colour = colours[k % len(colours)]
        lines.append(f"<polyline fill='none' stroke='{colour}' stroke-width='2' points='"
                     + " ".join(f"{x:.1f},{y:.1f}" for x, y in points) + "'/>")
        legend.append(f"<text x='{30 + 110 * k}' y='{height - 4}' fill='{colour}' font-size='11'>"
                      f"{html.escape(label)} {values[-1]:.4g}</text>")
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}'>"
            f"<text x='2' y='14' font-size='10'>{high:.3g}</text><text x='2' y='{height - 20}' font-size='10'>"
            f"{low:.3g}</text>{''.join(lines)}{''.join(legend)}</svg>")


def history_html(history):
    """A fit history: loss and accuracy curves per epoch (training and validation), inline."""
    losses = {k: history[k] for k in ("loss", "val_loss") if any(v is not None for v in history.get(k, []))}
    accuracies = {k: history[k] for k in ("accuracy", "val_accuracy")
                  if any(v is not None for v in history.get(k, []))}
    epochs = len(history.get("loss", []))
    return (f"<div class='glassnet-history'><div>{epochs} epoch(s)</div>{curves_svg(losses)}"
            f"{curves_svg(accuracies) if accuracies else ''}</div>")


class History(dict):
    """What ``fit`` returns: the per-epoch dict, which also draws its curves in a notebook."""

    def _repr_html_(self):
        return history_html(self)
