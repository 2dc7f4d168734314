"""fit / evaluate / predict / summary for a Sequential model.

An epoch visits every training sample exactly once, in an order drawn from the
given generator; ``batch_size=1`` is the seeds' per-sample SGD.
"""
import sys

import numpy as np

from .errors import GlassnetError
from .layers.activations import softmax
from .losses import BinaryCrossEntropy, CrossEntropy, Loss, MSE, SoftmaxCrossEntropy
from .optim import SGD, Adam, Optimizer
from .validation import as_float_array, make_rng, positive_int

LOSSES = {"softmax_cross_entropy": SoftmaxCrossEntropy, "cross_entropy": CrossEntropy,
          "binary_cross_entropy": BinaryCrossEntropy, "mse": MSE}


def resolve_loss(loss):
    if loss is None:
        return SoftmaxCrossEntropy()
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str) and loss in LOSSES:
        return LOSSES[loss]()
    raise GlassnetError(f"fit: loss must be a glassnet Loss or one of {sorted(LOSSES)}. Received: loss={loss!r}")


def resolve_optimizer(model, optimizer, lr):
    if isinstance(optimizer, Optimizer):
        return optimizer
    lr = 0.01 if lr is None else lr
    if optimizer in (None, "sgd"):
        return SGD(model, lr=lr)
    if optimizer == "momentum":
        return SGD(model, lr=lr, momentum=0.9)
    if optimizer == "adam":
        return Adam(model, lr=lr)
    raise GlassnetError("fit: optimizer must be an Optimizer or 'sgd', 'momentum', 'adam'. "
                        f"Received: optimizer={optimizer!r}")


def accuracy(loss, outputs, target):
    """Fraction of correct predictions for classification losses; None for MSE."""
    target = np.asarray(target)
    if isinstance(loss, (SoftmaxCrossEntropy, CrossEntropy)):
        labels = target if target.ndim == 1 else target.argmax(axis=1)
        return float(np.mean(outputs.argmax(axis=1) == labels))
    if isinstance(loss, BinaryCrossEntropy):
        return float(np.mean((outputs > 0.5) == (target > 0.5)))
    return None


def check_xy(model, x, y, owner):
    x = as_float_array(x, owner, model.dtype, name="x")
    y = np.asarray(y)
    if x.shape[0] == 0:
        raise GlassnetError(f"{owner}: received an empty dataset, x.shape={x.shape}")
    if y.shape[0] != x.shape[0]:
        raise GlassnetError(f"{owner}: x and y hold different numbers of samples: "
                            f"x.shape={x.shape}, y.shape={y.shape}")
    if not np.all(np.isfinite(x)):
        raise GlassnetError(f"{owner}: x contains NaN or Inf values")
    return x, y


class _Progress:
    """A tqdm bar on a terminal; nothing when quiet, tqdm is missing or stderr is not a TTY."""

    def __init__(self, total, description, enabled):
        self.bar = None
        if enabled and sys.stderr.isatty():
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=total, desc=description, unit="img", leave=False)

    def update(self, count, loss):
        if self.bar is not None:
            self.bar.update(count)
            self.bar.set_postfix(loss=f"{loss:.4f}")

    def close(self):
        if self.bar is not None:
            self.bar.close()


def fit(model, x, y, epochs=1, batch_size=32, loss=None, optimizer=None, lr=None, validation_data=None,
        shuffle=True, seed=None, verbose=True, log=print):
    """Train ``model`` on (x, y); returns a history dict of per-epoch lists.

    Parameters
    ----------
    x : (N, ...) inputs; y : (N,) labels, (N, K) one-hot or (N, d) regression targets
    epochs, batch_size : int
    loss : Loss or name, default SoftmaxCrossEntropy
    optimizer : Optimizer or "sgd" | "momentum" | "adam" (with ``lr``)
    validation_data : (x_val, y_val) or None
    shuffle : reshuffle each epoch with ``seed`` (an int, a Generator or None)
    verbose : print one line per epoch through ``log`` and show a progress bar on a terminal

    Returns
    -------
    dict with "loss", "accuracy", "val_loss", "val_accuracy" (lists, one entry per epoch;
    accuracies are None for regression losses).
    """
    epochs = positive_int(epochs, "epochs", "fit")
    batch_size = positive_int(batch_size, "batch_size", "fit")
    x, y = check_xy(model, x, y, "fit")
    loss = resolve_loss(loss)
    optimizer = resolve_optimizer(model, optimizer, lr)
    rng = make_rng(seed, "fit")
    tracks_accuracy = not isinstance(loss, MSE)
    history = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []}
    n = x.shape[0]
    for epoch in range(1, epochs + 1):
        model.train()
        order = rng.permutation(n) if shuffle else np.arange(n)
        progress = _Progress(n, f"epoch {epoch}/{epochs}", verbose)
        total_loss, correct = 0.0, 0.0
        for start in range(0, n, batch_size):
            batch = order[start:start + batch_size]
            outputs = model.forward(x[batch])
            batch_loss = loss.forward(outputs, y[batch])
            model.backward(loss.backward(), input_grad=False)
            optimizer.step()
            total_loss += batch_loss * len(batch)
            if tracks_accuracy:
                correct += accuracy(loss, outputs, y[batch]) * len(batch)
            progress.update(len(batch), batch_loss)
        progress.close()
        history["loss"].append(total_loss / n)
        history["accuracy"].append(correct / n if tracks_accuracy else None)
        if validation_data is not None:
            val_loss, val_accuracy = evaluate(model, *validation_data, loss=loss)
        else:
            val_loss, val_accuracy = None, None
        history["val_loss"].append(val_loss)
        history["val_accuracy"].append(val_accuracy)
        if verbose:
            log(epoch_line(epoch, epochs, history))
    model.eval()
    return history


def epoch_line(epoch, epochs, history):
    parts = [f"epoch {epoch}/{epochs}", f"loss {history['loss'][-1]:.4f}"]
    for key, label in (("accuracy", "acc"), ("val_loss", "val loss"), ("val_accuracy", "val acc")):
        if history[key][-1] is not None:
            parts.append(f"{label} {history[key][-1]:.4f}")
    return "  ".join(parts)


def predict(model, x, batch_size=256):
    """Model outputs for x in evaluation mode, batch by batch: (N, ...) -> (N, outputs)."""
    x = as_float_array(x, "predict", model.dtype, name="x")
    if x.shape[0] == 0:
        raise GlassnetError(f"predict: received an empty batch, x.shape={x.shape}")
    was_training = model.training
    model.eval()
    try:
        return np.concatenate([model.forward(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)])
    finally:
        model.train(was_training)


def probabilities(model, x):
    """Class probabilities: softmax of the outputs unless the model already ends in Softmax/Sigmoid."""
    outputs = predict(model, x)
    last = type(model.layers[-1]).__name__
    return outputs if last in ("Softmax", "Sigmoid") else softmax(outputs, axis=1)


def evaluate(model, x, y, loss=None, batch_size=256):
    """(mean loss, accuracy) over the whole set; accuracy is None for regression."""
    x, y = check_xy(model, x, y, "evaluate")
    loss = resolve_loss(loss)
    outputs = predict(model, x, batch_size)
    return loss.forward(outputs, y), accuracy(loss, outputs, y)


def summary_text(model, input_shape=None):
    """A table of layer, output shape and parameter count, with the total."""
    shape = tuple(input_shape) if input_shape is not None else model.metadata.get("input_shape")
    rows = [("layer", "output shape", "params")]
    for index, layer in enumerate(model.layers):
        if shape is not None:
            shape = layer.output_shape(tuple(shape))
        rows.append((f"{index}: {type(layer).__name__}", "(N, " + ", ".join(map(str, shape)) + ")" if shape else "?",
                     f"{layer.num_params():,}"))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines.append(f"total parameters: {model.num_params():,}")
    return "\n".join(lines)
