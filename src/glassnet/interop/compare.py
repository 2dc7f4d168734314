"""``gn.compare(model, other, x)``: two models on the same input, layer by layer.

Seed 003 checks a hand-built network against Keras weight by weight; this is that check as one
call. ``other`` is a glassnet ``Sequential`` or a ``torch.nn.Sequential`` (converted with
``from_torch``, so its own modules run: each of its outputs is recorded with a forward hook).
"""
from dataclasses import dataclass

import numpy as np

from ..errors import GlassnetError
from ..sequential import Sequential
from ..trace import trace


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
    """[(layer name, output (N, ...), {param: grad} or None)] for a glassnet model or a torch Sequential."""
    if not isinstance(model, Sequential):
        if type(model).__module__.startswith("torch"):
            return _torch_outputs(model, x, target, loss)
        raise GlassnetError(f"compare: expected a glassnet Sequential or a torch.nn.Sequential. "
                            f"Received: {type(model).__name__}")
    model.eval()
    if target is None or loss is None:
        rows, h = [], np.asarray(x)
        for layer in model.layers:
            h = layer.forward(h)
            rows.append((type(layer).__name__, h.copy(), None))
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
            reference = loss.forward(prediction.detach().numpy().astype(np.float64), target)
            grad = torch.from_numpy(loss.backward()).to(dtype)
            prediction.backward(grad)
            del reference
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
