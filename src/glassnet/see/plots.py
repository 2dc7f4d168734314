"""Pictures of a model and its training, as PNG files (matplotlib, Agg, no display needed).

Every function takes a destination path, writes it atomically and returns it:

- ``training_curves(history, path)``: loss and accuracy per epoch, train and validation
- ``gradient_norms(history, path)``: per-parameter gradient norm and dead-ReLU fraction per epoch
- ``filters(model, path)``: the first convolution layer's kernels as a grid of images
- ``feature_maps(model, x, path)``: every convolution layer's output for one input (1, C, H, W)
- ``confusion_matrix(labels, predictions, class_names, path)``
- ``misclassified(x, labels, predictions, class_names, path)``: a gallery of wrong predictions
"""
import math

import numpy as np

from ..errors import GlassnetError
from ..atomic import atomic_write
from ..nn.layers import Conv2D


def _figure(width, height):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise GlassnetError("pictures need matplotlib: pip install 'glassnet[plots]'") from None
    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")   # leaves room for every title
    FigureCanvasAgg(figure)
    return figure


def _show_image(axis, image):
    """One input image (C, H, W): colour (C = 3) in colour, stretched to [0, 1]; otherwise its first channel
    in grey."""
    if image.shape[0] == 3:
        image = image.transpose(1, 2, 0)                          # (3, H, W) -> (H, W, 3)
        axis.imshow((image - image.min()) / max(float(image.max() - image.min()), 1e-12))
    else:
        axis.imshow(image[0], cmap="gray")


def _save(figure, path):
    with atomic_write(path) as out:
        figure.savefig(out, format="png")
    return path


def _epochs(values):
    return np.arange(1, len(values) + 1)


def training_curves(history, path):
    """Loss (left) and accuracy (right) per epoch, training and validation; on the loss's figure, the
    learning rate of every batch on a second axis when a schedule moved it."""
    if not history.get("loss"):
        raise GlassnetError("training_curves: the history holds no epochs")
    figure = _figure(10, 4)
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    for key, label in (("loss", "training"), ("val_loss", "validation")):
        values = [v for v in history.get(key, []) if v is not None]
        if values:
            loss_axes.plot(_epochs(values), values, marker="o", label=label)
    loss_axes.set(title="loss", xlabel="epoch")
    handles = loss_axes.get_legend_handles_labels()
    rates = history.get("lr_batches") or []
    if rates and len(set(rates)) > 1:                           # a schedule: the rate per batch, on its own axis
        rate_axes = loss_axes.twinx()
        epochs = len(history["loss"])
        steps = np.arange(1, len(rates) + 1) * epochs / len(rates)      # batch k ends at epoch k * E / B
        rate_axes.plot(steps, rates, color="tab:green", linewidth=1.5, label="learning rate (right)")
        rate_axes.set(ylabel="learning rate", ylim=(0, max(rates) * 1.05))
        more = rate_axes.get_legend_handles_labels()
        handles = (handles[0] + more[0], handles[1] + more[1])
    loss_axes.legend(*handles)
    has_accuracy = False
    for key, label in (("accuracy", "training"), ("val_accuracy", "validation")):
        values = [v for v in history.get(key, []) if v is not None]
        if values:
            accuracy_axes.plot(_epochs(values), values, marker="o", label=label)
            has_accuracy = True
    accuracy_axes.set(title="accuracy" if has_accuracy else "accuracy (regression: none)", xlabel="epoch")
    if has_accuracy:
        accuracy_axes.legend()
    return _save(figure, path)


def gradient_norms(history, path):
    """Mean gradient norm of every parameter per epoch (log scale), and the dead-ReLU fractions."""
    norms = history.get("grad_norms") or {}
    if not norms:
        raise GlassnetError("gradient_norms: the history holds no gradient norms (train with fit first)")
    figure = _figure(10, 4)
    norm_axes, dead_axes = figure.subplots(1, 2)
    for name, values in norms.items():
        norm_axes.plot(_epochs(values), np.maximum(values, 1e-12), marker=".", label=name)
    norm_axes.set(title="gradient norm per parameter (mean over batches)", xlabel="epoch", yscale="log")
    norm_axes.legend(fontsize="small")
    dead = history.get("dead_relu") or {}
    for index, values in dead.items():
        dead_axes.plot(_epochs(values), values, marker="o", label=f"ReLU layer {index}")
    dead_axes.set(title="dead ReLU units (fraction)", xlabel="epoch", ylim=(-0.02, 1.02))
    if dead:
        dead_axes.legend(fontsize="small")
    return _save(figure, path)


def _grid(count):
    columns = min(count, 8)
    return math.ceil(count / columns), columns


def filters(model, path):
    """The first Conv2D's kernels: one row of channels per filter (up to 8 channels)."""
    conv = next((layer for layer in model.layers if isinstance(layer, Conv2D)), None)
    if conv is None:
        raise GlassnetError("filters: the model has no Conv2D layer")
    weight = conv.params["weight"]                                   # (F, C, kh, kw)
    shown_channels = min(weight.shape[1], 8)
    tiles = [(f, c) for f in range(weight.shape[0]) for c in range(shown_channels)]
    rows, columns = _grid(len(tiles)) if shown_channels == 1 else (weight.shape[0], shown_channels)
    figure = _figure(1.3 * columns + 1, 1.3 * rows + 0.6)
    limit = float(np.abs(weight).max()) or 1.0
    axes = np.atleast_1d(figure.subplots(rows, columns)).ravel()
    for axis in axes:
        axis.axis("off")
    for axis, (f, c) in zip(axes, tiles):
        axis.imshow(weight[f, c], cmap="RdBu_r", vmin=-limit, vmax=limit)
        axis.set_title(f"filter {f}" + (f" ch {c}" if shown_channels > 1 else ""), fontsize=8)
    figure.suptitle(f"first-layer filters {tuple(weight.shape)} (red > 0, blue < 0)")
    return _save(figure, path)


def feature_maps(model, x, path, max_maps=16):
    """Every Conv2D node's output channels (up to ``max_maps`` each) for one input x: (1, C, H, W) (in a graph
    model, a convolution called twice shows each call)."""
    x = np.asarray(x)
    if x.ndim != 4 or x.shape[0] != 1:
        raise GlassnetError(f"feature_maps: expected one image of shape (1, C, H, W), received shape {x.shape}")
    was_training = model.training
    model.eval()
    maps = []

    def keep(k, inputs, output):                  # each Conv2D node's output, as the engine computes it
        if isinstance(model.layers[model.graph.nodes[k][0]], Conv2D):
            maps.append((k, np.array(output[0], copy=True)))
    try:
        model.graph.forward([x.astype(model.dtype)], model.graph.runners(), watch=keep)
    finally:
        model.train(was_training)
    if not maps:
        raise GlassnetError("feature_maps: the model has no Conv2D layer")
    columns = min(max(len(m[:max_maps]) for _, m in maps), 8)
    rows = 1 + sum(math.ceil(len(m[:max_maps]) / columns) for _, m in maps)
    figure = _figure(1.4 * columns + 1, 1.5 * rows)
    axes = np.atleast_2d(figure.subplots(rows, columns))
    for axis in axes.ravel():
        axis.axis("off")
    _show_image(axes[0, 0], x[0])
    axes[0, 0].set_title("input", fontsize=8)
    row = 1
    for index, channels in maps:
        for k, channel in enumerate(channels[:max_maps]):
            axis = axes[row + k // columns, k % columns]
            axis.imshow(channel, cmap="viridis")
            axis.set_title(f"{'layer' if model.is_chain else 'node'} {index} ch {k}", fontsize=7)
        row += math.ceil(len(channels[:max_maps]) / columns)
    figure.suptitle("feature maps of every Conv2D " + ("layer" if model.is_chain else "node"))
    return _save(figure, path)


def confusion_matrix(labels, predictions, class_names, path):
    """Counts of (true class, predicted class), the diagonal being the correct ones."""
    labels, predictions = np.asarray(labels, dtype=int), np.asarray(predictions, dtype=int)
    k = len(class_names)
    if labels.shape != predictions.shape or labels.size == 0:
        raise GlassnetError(f"confusion_matrix: labels {labels.shape} and predictions {predictions.shape} "
                            "must be equal, non-empty vectors")
    counts = np.zeros((k, k), dtype=int)
    np.add.at(counts, (labels, predictions), 1)
    figure = _figure(0.5 * k + 3, 0.5 * k + 2.5)
    axes = figure.subplots()
    image = axes.imshow(counts, cmap="Blues")
    figure.colorbar(image, ax=axes)
    axes.set(xticks=range(k), yticks=range(k), xlabel="predicted", ylabel="true",
             title=f"confusion matrix (accuracy {np.trace(counts) / counts.sum():.4f})")
    axes.set_xticklabels(class_names, rotation=45, ha="right", fontsize=8)
    axes.set_yticklabels(class_names, fontsize=8)
    for (i, j), count in np.ndenumerate(counts):
        if count:
            axes.text(j, i, str(count), ha="center", va="center", fontsize=7,
                      color="white" if count > counts.max() / 2 else "black")
    return _save(figure, path)


def misclassified(x, labels, predictions, class_names, path, limit=25):
    """Up to ``limit`` wrongly classified images (N, C, H, W) titled 'predicted / true'."""
    wrong = np.flatnonzero(np.asarray(labels) != np.asarray(predictions))[:limit]
    count = max(len(wrong), 1)
    rows, columns = _grid(count)
    figure = _figure(1.5 * columns + 0.5, 1.7 * rows + 0.5)
    axes = np.atleast_1d(figure.subplots(rows, columns)).ravel()
    for axis in axes:
        axis.axis("off")
    if len(wrong) == 0:
        axes[0].text(0.5, 0.5, "no misclassified images", ha="center", va="center")
    for axis, index in zip(axes, wrong):
        _show_image(axis, np.asarray(x[[index]])[0])              # (C, H, W)
        axis.set_title(f"{class_names[predictions[index]]} / {class_names[labels[index]]}", fontsize=8,
                       color="firebrick")
    figure.suptitle(f"misclassified: predicted / true ({len(wrong)} shown)")
    return _save(figure, path)
