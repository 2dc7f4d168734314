"""A convolution and the BatchNorm2D after it in one step, for inference (``Graph.infer``), as inference
engines (ONNX Runtime among them) fold them.

BatchNorm2D in evaluation is y = x * scale + shift per channel (``BatchNorm2D.scale_and_shift``). After a
convolution, x = W * input + b, so

    y = (scale W) * input + (scale b + shift):

the convolution again, its weights scaled per output channel and with a new bias. Folding costs one pass
over the weights (F x C/groups x kh x kw values, made again on every call: weights change in training, and
a pass over them is cheaper than checking them) and saves the normalisation's two passes over the output
(N x F x OH x OW), of which the new bias takes one back (none where the bias rides in the product, first
layers). So it is taken where the weights have fewer values than the output; elsewhere (late layers at
small batches: 3x3x512x512 weights against 512x7x7 outputs a sample) the normalisation runs in place on the
convolution's new output, the same two passes as ``BatchNorm2D.forward`` on no new array, with its bits.

Folded, the products are of other numbers (scale W, rounded), so the output is the unfolded one up to
rounding (float64: ~1e-15 relative; tests/test_conv_norm.py checks against the layers one after the other and
against PyTorch).
"""
import copy

import numpy as np

from ...backend import NUMPY, namespace


def conv_then_batch_norm(conv, norm, x):
    """norm(conv(x)) for inference, ``norm`` in evaluation: x (N, C, H, W) -> (N, F, OH, OW), a new array;
    None where this way does not apply (then run the layers one after the other)."""
    if norm.training or namespace(x) is not NUMPY or norm.dtype != conv.dtype:
        return None
    x = conv.checked_input(x)
    scale, shift = norm.scale_and_shift()                                        # (F,), (F,)
    if conv.params["weight"].size >= conv_output_size(conv, x):
        out = conv.infer(x)
        out *= np.reshape(scale, (-1, 1, 1))
        out += np.reshape(shift, (-1, 1, 1))
        return out
    return folded(conv, scale, shift).infer(x)


def conv_output_size(conv, x):
    """Values in conv's output for input x: N * F * OH * OW."""
    OH, OW = conv._spatial_output(*x.shape[2:])
    return x.shape[0] * conv.out_channels * OH * OW


def folded(conv, scale, shift):
    """A shallow copy of ``conv`` whose weights are scale W (scaled per output channel) and bias
    scale b + shift (shift alone without a bias): (F,) scale and shift."""
    weight = conv.params["weight"]
    twin = copy.copy(conv)
    twin.params = {"weight": weight * np.reshape(scale, (-1,) + (1,) * (weight.ndim - 1)),
                   "bias": shift + scale * conv.params["bias"] if conv.use_bias else shift}
    twin.use_bias = True
    twin.grads = {}
    return twin
