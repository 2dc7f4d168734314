"""``gn.compare(model, other, x)``: two models on the same input, layer by layer.

Seed 003 checks a hand-built network against Keras weight by weight; this is that check as one
call (node by node for graph models). ``other`` is a glassnet ``Sequential`` or ``Model``, a
``torch.nn.Sequential`` (its own modules run; each
output is recorded with a forward hook) or a Keras ``Sequential`` (its own layers run one after the
other on NHWC data; outputs are compared in NCHW, and a Keras layer that glassnet splits in two,
such as Conv2D with ``activation="relu"``, is compared at the end of the pair; gradients are not
taken from Keras).
"""
from dataclasses import dataclass

import numpy as np

from ..errors import GlassnetError
from ..models.model import Model
from .trace import trace


@dataclass
class LayerDifference:
    index: int
    layer: str
    output: float          # largest |difference| of the layer's outputs
    gradient: float = None  # largest |difference| of dL/d(params), given a target and loss


@dataclass
class Comparison:
    layers: list

    @property
    def largest(self):
        return max(d.output for d in self.layers)

    def text(self):
        rows = [f"{'layer':<40} {'max |out diff|':>15} {'max |grad diff|':>16}"]
        for d in self.layers:
            grad = "" if d.gradient is None else f"{d.gradient:.3e}"
            rows.append(f"{str(d.index) + ': ' + d.layer:<40.40} {d.output:>15.3e} {grad:>16}")
        return "\n".join(rows)

    __str__ = text


def compare(model, other, x, target=None, loss=None):
    """Run ``model`` and ``other`` on ``x`` (N, C, H, W); the largest output difference of every layer
    (and, with ``target`` and ``loss``, of every parameter gradient). Both in evaluation mode."""
    first = _outputs_and_grads(model, x, target, loss)
    if type(other).__module__.startswith("keras"):
        if target is not None or loss is not None:
            raise GlassnetError("compare: gradients are compared for glassnet and PyTorch models; for a Keras model "
                                "compare outputs (no target/loss), or its gn.from_keras conversion with gradients")
        first, second = _keras_rows(model, other, first, x)
    else:
        second = _outputs_and_grads(other, x, target, loss)
    if len(first) != len(second):
        raise GlassnetError(f"compare: the models have {len(first)} and {len(second)} layers")
    differences = []
    for index, ((name, out_a, grads_a), (_, out_b, grads_b)) in enumerate(zip(first, second)):
        if out_a.shape != out_b.shape:
            raise GlassnetError(f"compare: layer {index} ({name}) gives shapes {out_a.shape} and {out_b.shape}")
        gradient = None
        if grads_a is not None and grads_b is not None and grads_a:
            gradient = max(float(np.max(np.abs(grads_a[k] - grads_b[k]))) for k in grads_a)
        differences.append(LayerDifference(index, name, float(np.max(np.abs(out_a - out_b))), gradient))
    return Comparison(differences)


def _outputs_and_grads(model, x, target, loss):
    """[(node name, output (N, ...), {param: grad} or None)] for a glassnet model (one row per node: per
    layer in a Sequential) or a torch Sequential."""
    if not isinstance(model, Model):
        if type(model).__module__.startswith("torch"):
            return _torch_outputs(model, x, target, loss)
        raise GlassnetError(f"compare: expected a glassnet Sequential or Model, or a torch.nn.Sequential. "
                            f"Received: {type(model).__name__}")
    model.eval()
    if target is None or loss is None:
        rows = []
        record = lambda k, inputs, output: rows.append(  # noqa: E731
            (type(model.layers[model.graph.nodes[k][0]]).__name__, np.array(output, copy=True), None))
        model.graph.forward([np.asarray(x)], model.graph.runners(), watch=record)
        return rows
    record = trace(model, x, target, loss)
    return [(s.layer.split("(")[0], s.output, s.param_grads) for s in record.steps]


def _torch_outputs(module, x, target, loss):
    import torch
    module.eval()
    outputs = []
    hooks = [child.register_forward_hook(lambda m, i, o: outputs.append(o)) for child in module.children()]
    dtype = next(module.parameters()).dtype
    try:
        prediction = module(torch.from_numpy(np.asarray(x)).to(dtype))
        if target is not None and loss is not None:
            for output in outputs:
                output.retain_grad()
            loss.forward(prediction.detach().numpy().astype(np.float64), target)   # the same loss, glassnet's
            prediction.backward(torch.from_numpy(loss.backward()).to(dtype))          # dL/d(prediction) into torch
    finally:
        for hook in hooks:
            hook.remove()
    rows = []
    for child, output in zip(module.children(), outputs):
        grads = None
        if target is not None and loss is not None:
            grads = {}
            if getattr(child, "weight", None) is not None and child.weight.grad is not None:
                weight = child.weight.grad.numpy()
                grads["weight"] = weight.T if isinstance(child, torch.nn.Linear) else weight
            if getattr(child, "bias", None) is not None and child.bias.grad is not None:
                grads["bias"] = child.bias.grad.numpy()
        rows.append((type(child).__name__, output.detach().numpy(), grads))
    return rows


def _keras_rows(model, keras_model, glass_rows, x):
    """Line glassnet's rows up with a Keras model's layers; returns (glassnet rows, Keras rows)."""
    import keras
    from ..files.keras_convert import from_keras
    groups = from_keras(keras_model).metadata["converted_from"]["layers_per_layer"]
    if sum(groups) != len(glass_rows):
        raise GlassnetError(f"compare: the Keras model becomes {sum(groups)} glassnet layers, the model has "
                            f"{len(glass_rows)}")
    h = np.asarray(x).transpose(0, 2, 3, 1) if np.ndim(x) == 4 else np.asarray(x)      # NCHW -> NHWC
    ours, theirs, end = [], [], 0
    for layer, count in zip(keras_model.layers, groups):
        h = layer(h, training=False)
        end += count
        if count == 0:                                                    # ZeroPadding2D: folded into the next
            continue
        value = keras.ops.convert_to_numpy(h)
        value = value.transpose(0, 3, 1, 2) if value.ndim == 4 else value
        name, output, _ = glass_rows[end - 1]
        ours.append((name, output, None))
        theirs.append((type(layer).__name__, value, None))
    return ours, theirs
