"""Why did it say 7? Attribution: how much each input pixel (or, for Grad-CAM, each place in a layer's
maps) counts towards one output, built on the engine's own forward and backward.

``gn.attribute(model, x, target, method=...)``, with x (N, C, H, W) (or any input the model takes) and
``target`` an output index per sample (a logit, as Captum's ``target``):

- ``"gradient"``: ``d out[target] / dx`` (Captum's ``Saliency(abs=False)``);
- ``"input_x_gradient"``: ``x * d out[target] / dx``;
- ``"integrated_gradients"``: ``(x - b) * integral_0^1 d out[target] / dx at b + a (x - b) da``, by
  Gauss-Legendre (``rule="gausslegendre"``, default) or the trapezoid rule on ``steps`` points; the
  attributions add up to ``out(x) - out(b)`` as ``steps`` grows (completeness);
- ``"smoothgrad"``: the mean gradient at ``samples`` noisy copies of x (Gaussian noise of standard
  deviation ``noise`` times each sample's value range, drawn with ``seed``);
- ``"occlusion"``: for every position of a ``window`` (all channels) moved by ``stride``, ``out(x) -
  out(x with the window set to baseline)``, averaged over the windows that cover each pixel (windows past
  the edge are cut, as Captum's);
- ``"gradcam"``: at a layer (``layer=``, its index in ``model.layers`` or the layer; default the last one
  with (N, C, H', W') output larger than 1x1), ``ReLU(sum_c w_c A_c)`` with ``w_c`` the mean over (h, w) of
  ``d out[target] / dA_c``; (N, H', W').

Every method returns an ``Attribution``: a NumPy array (the input methods' have x's shape) that also
remembers its inputs, method and targets, and draws itself in a notebook (each image beside its map).

>>> model = gn.Sequential([gn.Dense(2, 1, rng=0, bias=False)])
>>> model[0].params["weight"] = np.array([[2.0], [-1.0]])
>>> np.asarray(gn.attribute(model, np.array([[3.0, 4.0]]), 0, method="input_x_gradient"))   # x * w
array([[ 6., -4.]])
"""
import math

import numpy as np

from ..backend import beside, to_namespace, to_numpy
from ..errors import GlassnetError
from ..nn.losses import Loss
from ..validation import make_rng

METHODS = ("gradient", "input_x_gradient", "integrated_gradients", "smoothgrad", "occlusion", "gradcam")
RULES = ("gausslegendre", "riemann_trapezoid")
CHUNK_VALUES = 2 ** 24          # integrated gradients' path points are sent through in batches of this size


def attribute(model, x, target, method="gradient", **options):
    """The attribution of ``model``'s output ``target`` to ``x`` by ``method`` (see the module's text).

    options: integrated_gradients ``steps=50, baseline=0.0, rule="gausslegendre"``; smoothgrad
    ``samples=25, noise=0.15, seed=0``; occlusion ``window=3, stride=1, baseline=0.0``; gradcam ``layer``.
    """
    if method not in METHODS:
        raise GlassnetError(f"attribute: method must be one of {', '.join(METHODS)}. Received: {method!r}")
    x = np.asarray(to_numpy(x), dtype=model.dtype)
    if x.ndim < 2 or x.shape[0] == 0:
        raise GlassnetError(f"attribute: expected a batch (N, ...). Received: shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise GlassnetError("attribute: x contains NaN or Inf values")
    allowed = {"gradient": (), "input_x_gradient": (), "integrated_gradients": ("steps", "baseline", "rule"),
               "smoothgrad": ("samples", "noise", "seed"), "occlusion": ("window", "stride", "baseline"),
               "gradcam": ("layer",)}[method]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise GlassnetError(f"attribute: method {method!r} takes {', '.join(allowed) or 'no options'}. "
                            f"Received: {', '.join(unknown)}")
    targets = _targets(model, x, target)
    was_training = model.training
    model.eval()
    try:
        if method == "gradient":
            values = gradients(model, x, targets)
        elif method == "input_x_gradient":
            values = x * gradients(model, x, targets)
        elif method == "integrated_gradients":
            values = integrated_gradients(model, x, targets, **options)
        elif method == "smoothgrad":
            values = smoothgrad(model, x, targets, **options)
        elif method == "occlusion":
            values = occlusion(model, x, targets, **options)
        else:
            values = gradcam(model, x, targets, **options)
    finally:
        model.train(was_training)
    return Attribution.of(values, x, method, targets)


class Attribution(np.ndarray):
    """An attribution's values (a NumPy array) with ``inputs``, ``method`` and ``targets``; in a notebook,
    each input (up to 8) beside its map (summed over channels; red > 0, blue < 0, one scale per map)."""

    @classmethod
    def of(cls, values, inputs, method, targets):
        made = np.asarray(values).view(cls)
        made.inputs, made.method, made.targets = inputs, method, targets
        return made

    def __array_finalize__(self, source):
        for name in ("inputs", "method", "targets"):
            setattr(self, name, getattr(source, name, None))

    def _repr_html_(self):
        from .display import heatmap_png
        values = np.asarray(self)
        if self.inputs is None or values.ndim < 2:
            return None
        rows = []
        for n in range(min(len(values), 8)):
            image, mapped = np.asarray(self.inputs[n], dtype=np.float64), values[n]
            mapped = mapped.sum(axis=0) if mapped.ndim == 3 else mapped
            pictures = [heatmap_png(image.mean(axis=0) if image.ndim == 3 else image, grey=True),
                        heatmap_png(mapped)]
            cells = "".join(f"<td><img src='data:image/png;base64,{p}'></td>" for p in pictures if p)
            rows.append(f"<tr><td>sample {n}, output {int(self.targets[n])}</td>{cells}"
                        f"<td>sum {mapped.sum():.6g}<br>largest |value| {np.abs(mapped).max():.6g}</td></tr>")
        return (f"<div class='glassnet-attribution'><b>{self.method}</b> attribution "
                f"<code>shape {values.shape}</code> (red &gt; 0, blue &lt; 0)<table>{''.join(rows)}</table></div>")


def _targets(model, x, target):
    """(N,) int output indices, checked against the model's output size."""
    outputs = _forward(model, x[:1]).shape
    if len(outputs) != 2:
        raise GlassnetError(f"attribute: the model's output must be (N, K) scores. Received: {outputs}")
    values = np.broadcast_to(np.asarray(target), (x.shape[0],)) if np.ndim(target) == 0 else np.asarray(target)
    if values.shape != (x.shape[0],) or values.dtype.kind not in "iu" or values.min() < 0 or \
            values.max() >= outputs[1]:
        raise GlassnetError(f"attribute: target must be an output index in [0, {outputs[1] - 1}] or one per "
                            f"sample ({x.shape[0]}). Received: {target!r}")
    return values.astype(np.int64)


def _forward(model, x):
    xp, device = model.place()
    return to_numpy(model.forward(to_namespace(np.ascontiguousarray(x), xp, device)))


def _selector(outputs_shape, targets, dtype):
    """dy with 1 at (n, target_n): backward of it gives d out[n, target_n] / d input."""
    dy = np.zeros(outputs_shape, dtype=dtype)
    dy[np.arange(outputs_shape[0]), targets] = 1.0
    return dy


def gradients(model, x, targets):
    """d out[n, target_n] / d x_n for each sample: one forward and one backward of the engine."""
    xp, device = model.place()
    outputs = model.forward(to_namespace(np.ascontiguousarray(x), xp, device))
    dy = _selector(tuple(outputs.shape), targets, model.dtype)
    # out[n, t] depends on x_n only (evaluation mode), so one backward of the selector gives every sample's
    return np.asarray(to_numpy(model.backward(to_namespace(dy, xp, device))))


def path_rule(steps, rule):
    """(alphas, weights) of a quadrature of integral_0^1 f(a) da on ``steps`` points: Gauss-Legendre, or
    the trapezoid rule on an even grid (weights 1/(steps-1), halved at the ends; they sum to 1)."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < (1 if rule == "gausslegendre" else 2):
        raise GlassnetError(f"attribute: steps must be an int of at least {1 if rule == 'gausslegendre' else 2}. "
                            f"Received: {steps!r}")
    if rule == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return 0.5 * (1 + nodes), 0.5 * weights                       # from [-1, 1] to [0, 1]
    if rule == "riemann_trapezoid":
        weights = np.full(steps, 1.0 / (steps - 1))
        weights[[0, -1]] /= 2
        return np.linspace(0.0, 1.0, steps), weights
    raise GlassnetError(f"attribute: rule must be one of {', '.join(RULES)}. Received: {rule!r}")


def integrated_gradients(model, x, targets, steps=50, baseline=0.0, rule="gausslegendre", alphas_weights=None):
    """(x - b) * sum_k w_k grad(b + a_k (x - b)); the path's points go through the engine in chunks of
    at most CHUNK_VALUES input values (memory stays bounded for many steps). ``alphas_weights`` replaces
    the rule's (alphas, weights) (the tests pass Captum's own)."""
    alphas, weights = path_rule(steps, rule) if alphas_weights is None else map(np.asarray, alphas_weights)
    base = _baseline(baseline, x)
    difference = x - base
    per_step = x.size
    chunk = max(1, CHUNK_VALUES // per_step)
    total = np.zeros_like(x)
    for start in range(0, len(alphas), chunk):
        part = alphas[start:start + chunk]
        points = np.concatenate([base + a * difference for a in part])                      # (k N, ...)
        grads = gradients(model, points, np.tile(targets, len(part))).reshape((len(part),) + x.shape)
        total += np.tensordot(weights[start:start + chunk], grads, axes=1)                   # sum_k w_k g_k
    return difference * total


def _baseline(baseline, x):
    base = np.asarray(baseline, dtype=x.dtype)
    try:
        return np.broadcast_to(base, x.shape)
    except ValueError:
        raise GlassnetError(f"attribute: baseline must be a number or broadcast to x's shape {x.shape}. "
                            f"Received: shape {base.shape}") from None


def smoothgrad(model, x, targets, samples=25, noise=0.15, seed=0):
    """The mean gradient over ``samples`` copies of x plus Gaussian noise of standard deviation
    ``noise * (max - min of the sample)``, drawn from ``np.random.default_rng(seed)``."""
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise GlassnetError(f"attribute: samples must be an int of at least 1. Received: {samples!r}")
    if not (isinstance(noise, (int, float)) and not isinstance(noise, bool) and noise >= 0 and math.isfinite(noise)):
        raise GlassnetError(f"attribute: noise must be a number >= 0. Received: {noise!r}")
    rng = make_rng(seed, "attribute")
    axes = tuple(range(1, x.ndim))
    spread = (x.max(axis=axes, keepdims=True) - x.min(axis=axes, keepdims=True)) * noise
    total = np.zeros_like(x)
    for _ in range(samples):
        noisy = x + rng.standard_normal(x.shape) * spread
        total += gradients(model, noisy.astype(x.dtype), targets)
    return total / samples


def occlusion(model, x, targets, window=3, stride=1, baseline=0.0):
    """Captum's Occlusion over (h, w) windows covering every channel: the drop of out[target] when a window
    is set to ``baseline``, averaged over the windows covering each pixel."""
    if x.ndim != 4:
        raise GlassnetError(f"attribute: occlusion takes images (N, C, H, W). Received: shape {x.shape}")
    (wh, ww), (sh, sw) = _pair(window, "window"), _pair(stride, "stride")
    N, C, H, W = x.shape
    if wh > H or ww > W or sh > wh or sw > ww:
        raise GlassnetError(f"attribute: occlusion window {(wh, ww)} must fit the image {(H, W)} and be at "
                            f"least the stride {(sh, sw)}")
    base = _baseline(baseline, x)
    picked = np.arange(N), targets
    reference = _forward(model, x)[picked]
    total, counts = np.zeros_like(x), np.zeros((H, W))
    for top, left in occlusion_windows((H, W), (wh, ww), (sh, sw)):
        covered = (slice(None), slice(None), slice(top, top + wh), slice(left, left + ww))
        occluded = x.copy()
        occluded[covered] = base[covered]
        drop = reference - _forward(model, occluded)[picked]                           # (N,)
        total[covered] += drop[:, None, None, None]
        counts[covered[2:]] += 1
    return total / counts


def occlusion_windows(size, window, stride):
    """The (top, left) corners of Captum's windows over an image of ``size``: ceil((H - h) / s) + 1 rows of
    them (the last may run past the edge and is cut there), likewise columns."""
    (H, W), (wh, ww), (sh, sw) = size, window, stride
    rows = range(0, (math.ceil((H - wh) / sh) + 1) * sh, sh)
    columns = range(0, (math.ceil((W - ww) / sw) + 1) * sw, sw)
    return [(top, left) for top in rows for left in columns]


def _pair(value, name):
    pair = (value, value) if isinstance(value, int) and not isinstance(value, bool) else tuple(value)
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in pair):
        raise GlassnetError(f"attribute: {name} must be a positive int or (height, width). Received: {value!r}")
    return pair


class _Selected(Loss):
    """The 'loss' whose gradient selects out[n, target_n]: backward gives the one-hot rows."""

    def forward(self, pred, target):
        host = np.asarray(to_numpy(pred))
        self._cache = (pred, host.dtype, np.asarray(target))
        return float(host[np.arange(len(target)), target].sum())

    def backward(self):
        pred, dtype, target = self._cache
        return beside(pred, _selector(tuple(pred.shape), target, dtype))      # where the model's arrays live


def gradcam(model, x, targets, layer=None):
    """Grad-CAM at ``layer``: ReLU(sum_c mean_hw(d out / dA_c) A_c) of the layer's output A (N, C, H', W')."""
    from .trace import trace
    index = None if layer is None else _layer_index(model, layer)
    record = trace(model, x, targets, _Selected())
    if index is None:
        index = default_gradcam_step(record.steps).layer_index
    step = next(s for s in record.steps if s.layer_index == index)
    maps, grads = np.asarray(step.output), np.asarray(step.grad_output)
    if maps.ndim != 4:
        raise GlassnetError(f"attribute: gradcam needs a layer with (N, C, H, W) output; layer {index} "
                            f"({type(model.layers[index]).__name__}) gives {maps.shape}")
    weights = grads.mean(axis=(2, 3), keepdims=True)                         # (N, C, 1, 1)
    return np.maximum((weights * maps).sum(axis=1), 0.0)


def default_gradcam_step(steps):
    """The last node with image-shaped output (N, C, H', W') larger than 1x1 (a 1x1 map says nothing about
    where), else the last image-shaped one."""
    images = [s for s in steps if np.ndim(s.output) == 4]
    if not images:
        raise GlassnetError("attribute: gradcam needs a layer with (N, C, H, W) output; this model has none")
    wide = [s for s in images if np.shape(s.output)[2] * np.shape(s.output)[3] > 1]
    return (wide or images)[-1]


def _layer_index(model, layer):
    if isinstance(layer, int) and not isinstance(layer, bool):
        if not 0 <= layer < len(model.layers):
            raise GlassnetError(f"attribute: layer must be in [0, {len(model.layers) - 1}]. Received: {layer}")
        return layer
    for index, candidate in enumerate(model.layers):
        if candidate is layer:
            return index
    raise GlassnetError(f"attribute: layer {layer!r} is not one of the model's layers")
