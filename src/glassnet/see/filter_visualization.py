"""What does a channel look for? Two answers for one channel of a layer's output:

- ``gn.visualize_filter(model, layer, channel)``: an input made up by gradient ascent on the channel's mean
  activation, from noise around the middle of the input range (drawn again, up to ``START_TRIES`` times,
  while the channel is shut there: behind a ReLU that gives no gradient), with three simple regularisers
  (as in the feature-visualisation literature, kept plain): each step moves along the gradient divided by
  its standard deviation, the input shrinks by ``decay`` of itself (L2), is shifted by up to ``jitter`` pixels at random before the
  pass (and the gradient shifted back), and is blurred by a 3x3 average every ``blur_every`` steps;
- ``top_inputs(model, layer, channel, images)``: the dataset images that excite the channel most.

The gradient is the engine's own backward through the layers up to ``layer`` (a chain of layers:
``Sequential``, or a graph model that is one chain).

>>> model = gn.Sequential([gn.Conv2D(1, 2, 3, rng=0), gn.ReLU()])
>>> image = gn.visualize_filter(model, 1, 0, steps=20, input_shape=(1, 8, 8))
>>> image.shape
(1, 8, 8)
"""
import numpy as np

from ..backend import to_namespace, to_numpy
from ..errors import GlassnetError
from ..validation import make_rng

START_TRIES = 20            # random starting points tried until the channel is open at one


def _chain_to(model, layer):
    """The layers up to and including ``layer`` (an index or the layer), for a chain."""
    if not getattr(model, "is_chain", True):
        raise GlassnetError("visualize_filter: works on a chain of layers (a Sequential); this graph model "
                            "branches")
    if not isinstance(layer, int) or isinstance(layer, bool):
        matches = [k for k, candidate in enumerate(model.layers) if candidate is layer]
        if not matches:
            raise GlassnetError(f"visualize_filter: {layer!r} is not one of the model's layers")
        layer = matches[0]
    if not 0 <= layer < len(model.layers):
        raise GlassnetError(f"visualize_filter: layer must be in [0, {len(model.layers) - 1}]. Received: {layer}")
    return model.layers[:layer + 1], layer


def _forward(layers, x):
    for layer in layers:
        x = layer.forward(x)
    return x


def channel_activation(model, layer, channel, x):
    """The mean activation of ``channel`` of ``layer``'s output for each sample of x: (N,)."""
    layers, _ = _chain_to(model, layer)
    xp, device = model.place()
    was_training = model.training
    model.eval()
    try:
        out = to_numpy(_forward(layers, to_namespace(np.ascontiguousarray(x, dtype=model.dtype), xp, device)))
    finally:
        model.train(was_training)
    _check_channel(out, channel)
    return out[:, channel].reshape(out.shape[0], -1).mean(axis=1)


def _check_channel(out, channel):
    if out.ndim < 2 or not isinstance(channel, int) or isinstance(channel, bool) or not 0 <= channel < out.shape[1]:
        raise GlassnetError(f"visualize_filter: channel must be in [0, {out.shape[1] - 1 if out.ndim > 1 else 0}] "
                            f"of the layer's output {out.shape[1:]}. Received: {channel!r}")


def _blur(image):
    """A 3x3 average of each channel (edges repeated): (C, H, W) -> (C, H, W)."""
    padded = np.pad(image, ((0, 0), (1, 1), (1, 1)), mode="edge")
    H, W = image.shape[1:]
    return sum(padded[:, i:i + H, j:j + W] for i in range(3) for j in range(3)) / 9.0


def visualize_filter(model, layer, channel, steps=200, lr=0.05, seed=0, decay=1e-3, jitter=1, blur_every=8,
                     input_shape=None, value_range=None):
    """An input (C, H, W) that makes ``channel`` of ``layer``'s output large (see the module's text).

    input_shape : one sample's shape (default: the model's, from training)
    value_range : (low, high) the input is clipped to after every step, e.g. the training data's range (so
        the made-up image is one the data could hold); None: unbounded
    """
    layers, _ = _chain_to(model, layer)
    shape = tuple(input_shape or model.metadata.get("input_shape") or ())
    if len(shape) != 3:
        raise GlassnetError("visualize_filter: the model does not know its input shape yet; pass "
                            "input_shape=(C, H, W)")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise GlassnetError(f"visualize_filter: steps must be an int of at least 1. Received: {steps!r}")
    rng = make_rng(seed, "visualize_filter")
    xp, device = model.place()
    low, high = value_range if value_range is not None else (-1.0, 1.0)
    for _ in range(START_TRIES):
        image = (low + high) / 2 + 0.25 * (high - low) * rng.standard_normal(shape)
        if value_range is not None:
            image = np.clip(image, low, high)
        if channel_activation(model, layer, channel, image[None])[0] > 0:
            break
    was_training = model.training
    model.eval()
    try:
        for step in range(1, steps + 1):
            dy_shift, dx_shift = rng.integers(-jitter, jitter + 1, size=2) if jitter else (0, 0)
            shifted = np.roll(image, (dy_shift, dx_shift), axis=(1, 2))
            out = _forward(layers, to_namespace(shifted[None].astype(model.dtype), xp, device))
            host = to_numpy(out)
            _check_channel(host, channel)
            grad = np.zeros(host.shape, dtype=model.dtype)
            grad[0, channel] = 1.0 / max(1, host[0, channel].size)          # d mean(A_c) / d A_c
            for current in reversed(layers):                                 # the engine's backward, down to x
                grad = current.backward(to_namespace(grad, xp, device))
            g = np.roll(np.asarray(to_numpy(grad))[0], (-dy_shift, -dx_shift), axis=(1, 2))
            image = (1 - decay) * (image + lr * g / (g.std() + 1e-12))
            if blur_every and step % blur_every == 0:
                image = _blur(image)
            if value_range is not None:
                image = np.clip(image, *value_range)
    finally:
        model.train(was_training)
    return image.astype(model.dtype)


def top_inputs(model, layer, channel, images, count=9, batch_size=256):
    """(indices, activations) of the ``count`` images whose mean ``channel`` activation is largest."""
    activations = np.concatenate([channel_activation(model, layer, channel, np.asarray(images[i:i + batch_size]))
                                  for i in range(0, len(images), batch_size)])
    order = np.argsort(-activations, kind="stable")[:count]
    return order, activations[order]
