"""See every number: one forward and backward pass recorded layer by layer.

>>> model = gn.explain.seed_example_model()          # seed 000: conv 2x2, ReLU, max pool, dense, sigmoid
>>> x = gn.explain.SEED_IMAGE.reshape(1, 1, 5, 5)
>>> record = gn.trace(model, x, np.array([[1.0]]), gn.BinaryCrossEntropy(), optimizer=gn.SGD(model, lr=0.1))
>>> record.steps[2].output                           # after max pooling (seed 000 prints [[3, 1], [5, 3]])
array([[[[3., 1.],
         [5., 3.]]]])
>>> round(record.loss, 10)                           # -ln(sigmoid(2)) = ln(1 + e**-2)
0.126928011
>>> print(record.text())                             # doctest: +ELLIPSIS
FORWARD PASS
============
input  shape (1, 1, 5, 5)
...

The recorded arrays are the ones the engine computes (copied as they pass), so what
the trace shows is exactly what training would use.
"""
from dataclasses import dataclass, field

import numpy as np

from ..backend import to_namespace, to_numpy
from ..errors import GlassnetError
from ..nn.losses import Loss
from ..nn.optim import Optimizer
from ..training.clipping import clip_grad_norm, gradient_norm
from ..validation import foreign_array


@dataclass
class LayerStep:
    """One node's part of a forward and backward pass (in a Sequential, node k is layer k).

    input, output : the forward arrays (``input`` is a list, one per input, for a merge)
    grad_output : dL/d(output), the gradient arriving from above
    grad_input : dL/d(input), the gradient passed down (a list for a merge)
    param_grads : dL/d(param) per parameter name ("weight", "bias") from this call of the layer
    params_before, params_after : parameter values before and after the optimizer step
    sources : what the node reads: ``"input"`` or another node's label (``"3: Conv2D"``)
    grad_parts : where the output is read by several nodes (a fan-out), the gradient from each reader,
        in the order of the readers; ``grad_output`` is their sum. None for a single reader.
    layer_index : the layer's place in ``model.layers`` (a shared layer's calls have the same one)
    """
    index: int
    layer: str
    input: np.ndarray
    output: np.ndarray
    grad_output: np.ndarray = None
    grad_input: np.ndarray = None
    param_grads: dict = field(default_factory=dict)
    params_before: dict = field(default_factory=dict)
    params_after: dict = field(default_factory=dict)
    sources: list = field(default_factory=list)
    grad_parts: list = None
    layer_index: int = None

    @property
    def merges(self):
        return isinstance(self.input, list)


@dataclass
class Trace:
    """The whole pass: per-layer steps in forward order, the loss and its gradient."""
    steps: list
    loss_name: str
    loss: float
    target: np.ndarray
    grad_prediction: np.ndarray
    optimizer: str = ""
    grad_input: np.ndarray = None      # dL/d(model input): the sum over every node that reads it
    clipping: tuple = None             # (total norm before, after, max_norm) when the step clipped gradients

    def text(self, max_elements=64, precision=8):
        return render(self, max_elements, precision)

    __str__ = text

    def _repr_html_(self):
        """Every layer collapsible, small arrays whole, large ones as heatmaps, for notebooks."""
        from .display import trace_html
        return trace_html(self)


def trace(model, x, target, loss, optimizer=None, clip_norm=None):
    """Run one forward and backward pass of ``model`` on (x, target), recording everything.

    x : a batch the model takes (e.g. (N, C, H, W)); target : what ``loss`` takes
    loss : a glassnet Loss; optimizer : an Optimizer over ``model`` to also take one step, or None
    clip_norm : with an optimizer, the gradients are clipped to this total norm before its step (as
        ``fit(clip_grad_norm=)``); the trace keeps the norm before and after (the recorded gradients are
        the unclipped ones)
    Returns a ``Trace``. The model's grads (and, with an optimizer, its weights) change as in training.
    """
    if not isinstance(loss, Loss):
        raise GlassnetError(f"trace: loss must be a glassnet Loss (e.g. gn.SoftmaxCrossEntropy()). "
                            f"Received: {loss!r}")
    if optimizer is not None and not isinstance(optimizer, Optimizer):
        raise GlassnetError(f"trace: optimizer must be a glassnet Optimizer or None. Received: {optimizer!r}")
    graph, steps = model.graph, []
    xp, device = model.place()
    h = x if foreign_array(x) else to_namespace(np.asarray(x), xp, device)   # the batch, where the model is
    runners, sources = graph.runners(), model.node_inputs()

    def forward_step(k, inputs, output):
        index = graph.nodes[k][0]
        layer = graph.layers[index]
        shown = [host_copy(a) for a in inputs] if layer.merges else host_copy(inputs[0])
        steps.append(LayerStep(k, repr(layer), shown, host_copy(output), sources=sources[k], layer_index=index,
                               params_before={key: host_copy(v) for key, v in layer.params.items()}))

    def backward_step(k, grad, input_grads, parts):
        step = steps[k]
        step.grad_output = host_copy(grad)
        step.grad_parts = [host_copy(part) for part in parts] if parts and len(parts) > 1 else None
        shown = [None if g is None else host_copy(g) for g in input_grads]
        step.grad_input = shown if graph.layers[graph.nodes[k][0]].merges else shown[0]
        step.param_grads = {key: host_copy(v) for key, v in runners[k].grads.items()}

    (prediction,) = graph.forward([h], runners, watch=forward_step)
    loss_value = loss.forward(prediction, target)
    grad = loss.backward()
    grad_prediction = host_copy(grad)
    (grad_input,) = graph.backward([grad], runners, watch=backward_step)
    graph.gather_shared_gradients(runners)
    clipping = None
    if optimizer is not None:
        if clip_norm is not None:
            before = clip_grad_norm(model, clip_norm)
            clipping = (before, gradient_norm(model), float(clip_norm))
        optimizer.step()
        for step in steps:
            step.params_after = {k: host_copy(v) for k, v in graph.layers[step.layer_index].params.items()}
    return Trace(steps, type(loss).__name__, loss_value, host_copy(target), grad_prediction,
                 optimizer=_optimizer_label(optimizer), grad_input=host_copy(grad_input), clipping=clipping)


def host_copy(array):
    """A NumPy copy of ``array`` (from any array library), independent of the engine's own."""
    return np.array(to_numpy(array), copy=True)


def _optimizer_label(optimizer):
    if optimizer is None:
        return ""
    settings = ", ".join(f"{k}={v}" for k, v in optimizer.hyperparameters().items())
    return f"{type(optimizer).__name__}({settings})"


# -- text rendering ------------------------------------------------------------------------------

def describe(label, array, max_elements=64, precision=8):
    """``label`` with the array's shape, then the array itself if small, else a summary line."""
    array = np.asarray(array)
    head = f"{label}  shape {tuple(array.shape)}"
    if array.size <= max_elements:
        shown = (np.squeeze(array) if array.ndim > 2 else array) + 0.0  # + 0.0 turns -0.0 into 0.0
        body = np.array2string(shown, precision=precision, suppress_small=True, max_line_width=100)
        if array.size == 1:
            body += f"   (exactly {array.item()!r})"
        return head + "\n" + _indent(body)
    values = array.astype(np.float64)
    return (head + f"\n    min {values.min():.6g}  max {values.max():.6g}  mean {values.mean():.6g}  "
                   f"norm {np.linalg.norm(values):.6g}  (size {array.size:,}: summarised)")


def _indent(text, prefix="    "):
    return "\n".join(prefix + line for line in text.splitlines())


def render(record, max_elements=64, precision=8):
    """The trace as text in the spirit of seed 000: forward, loss, backward, update."""
    show = lambda label, array: describe(label, array, max_elements, precision)  # noqa: E731
    lines = ["FORWARD PASS", "============"]
    graph = any(step.sources != (["input"] if step.index == 0 else [f"{step.index - 1}: "
                                                                      f"{_kind(record.steps[step.index - 1])}"])
                for step in record.steps)
    if record.steps and not graph:
        lines.append(show("input", record.steps[0].input))
    for step in record.steps:
        lines.append(f"-- {_heading(step, graph)}")
        if graph:
            inputs = step.input if step.merges else [step.input]
            for source, value in zip(step.sources, inputs):
                lines.append(show("input" if source == "input" else f"input from {source}", value))
        for key, value in step.params_before.items():
            lines.append(show(f"{key}", value))
        lines.append(show("output", step.output))
    lines += ["", "LOSS", "====", show("target", record.target),
              f"{record.loss_name} = {record.loss!r}", show("dL/d(prediction)", record.grad_prediction),
              "", "BACKWARD PASS (last layer first)", "================================"]
    for step in reversed(record.steps):
        lines.append(f"-- {_heading(step, graph)}")
        if step.grad_parts:
            lines.append(f"   read by {len(step.grad_parts)} nodes: dL/d(output) is the sum of their gradients")
            for number, part in enumerate(step.grad_parts, 1):
                lines.append(show(f"part {number}", part))
        lines.append(show("dL/d(output)  (arriving from above)", step.grad_output))
        calls = sum(other.layer_index == step.layer_index for other in record.steps)
        for key, value in step.param_grads.items():
            lines.append(show(f"dL/d({key})" + (f" of this call (layer {step.layer_index} is called {calls} "
                                                 f"times; its gradient is the sum)" if calls > 1 else ""), value))
        if step.merges:
            for source, value in zip(step.sources, step.grad_input):
                lines.append(show(("dL/d(input)" if source == "input" else f"dL/d(input from {source})")
                                  + "  (passed down)", value))
        elif step.grad_input is not None:
            lines.append(show("dL/d(input)  (passed down)" + (f" to {step.sources[0]}" if graph else ""),
                              step.grad_input))
    if record.optimizer:
        lines += ["", f"UPDATE: {record.optimizer}", "=" * (8 + len(record.optimizer))]
        if record.clipping is not None:
            before, after, limit = record.clipping
            scale = after / before if before else 1.0
            lines.append(f"gradients clipped to total norm {limit:g}: the norm of all gradients together was "
                         f"{before:.8g}, every gradient times min(1, {limit:g} / ({before:.8g} + 1e-6)) = "
                         f"{scale:.8g}, now {after:.8g}")
        shown = set()
        for step in record.steps:
            if step.layer_index in shown:                  # a shared layer is updated once
                continue
            shown.add(step.layer_index)
            for key, value in step.params_after.items():
                lines.append(show(f"layer {step.layer_index} updated {key}", value))
    return "\n".join(lines)


def _kind(step):
    return step.layer.split("(")[0]


def _heading(step, graph):
    """``layer 3: Conv2D(...)``; in a graph ``node 3: Conv2D(...) <- 1: ReLU, input``."""
    if not graph:
        return f"layer {step.index}: {step.layer}"
    return f"node {step.index}: {step.layer} <- {', '.join(step.sources)}"
