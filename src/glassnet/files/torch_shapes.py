"""Shapes in a traced PyTorch forward: ``x.shape``, ``x.size(i)``, their items and integer arithmetic are
worked out from the glassnet value's known shape, so that ``view``/``reshape``/``transpose`` calls can be
read: a flatten, a channel shuffle written out (``x.view(n, g, c // g, h, w).transpose(1, 2).reshape(n, c,
h, w)``, as torchvision's ShuffleNet writes it) or any other reshape of each sample (``gn.Reshape``)."""
import math
import operator

from ..errors import GlassnetError
from ..nn.layers import ChannelShuffle, Flatten, Reshape


class _Batch:
    """The batch size: unknown while tracing, allowed only as the first entry of a reshape."""

    def __repr__(self):
        return "N"


BATCH = _Batch()
ARITHMETIC = {operator.floordiv: "//", operator.mul: "*", operator.add: "+", operator.sub: "-",
              operator.truediv: "/"}


class Value:
    """A traced tensor: its symbolic value; whether it is a global pooling still (N, C, 1, 1); a channel
    shuffle half written out (``("split", g)`` after the 5-axis view, ``("swapped", g)`` after the transpose)."""

    def __init__(self, symbolic, pooled=False, shuffle=None):
        self.symbolic, self.pooled, self.shuffle = symbolic, pooled, shuffle
        self.image = None                        # a pooling's (N, C, 1, 1) form, once something reads it

    @property
    def shape(self):
        """PyTorch's shape of this value, batch first (a pooling kept as (N, C, 1, 1))."""
        sample = tuple(self.symbolic.shape)
        return (BATCH,) + (sample + (1, 1) if self.pooled else sample)


class Shape(tuple):
    """``x.shape`` or ``x.size()`` of a traced value."""


def shape_call(value, dim):
    """``x.size()`` / ``x.shape`` (``dim`` None) or ``x.size(dim)``."""
    shape = value.shape
    return Shape(shape) if dim is None else shape[dim]


def item(shape, index, where):
    if not isinstance(shape, Shape) or not isinstance(index, int):
        raise GlassnetError(f"{where}: only an item of a tensor's shape is supported here")
    return shape[index]


def arithmetic(function, a, b, where):
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (a, b)):
        raise GlassnetError(f"{where}: arithmetic on {a!r} and {b!r}: only on the sizes of a shape "
                            f"other than the batch size")
    result = function(a, b)
    return int(result) if function is not operator.truediv or result == int(result) else result


def reshaped(value, dims, where):
    """``value.view(*dims)`` / ``reshape``: Flatten, the steps of a written channel shuffle, or a Reshape."""
    dims = list(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else list(dims)
    if not dims or dims[0] not in (BATCH, -1) or any(d is BATCH for d in dims[1:]) or \
            any(not isinstance(d, int) for d in dims[1:] if d is not BATCH):
        raise GlassnetError(f"{where}: a reshape must keep the batch axis first (x.size(0) or -1). "
                            f"Received: {dims}")
    sample, target = value.shape[1:], dims[1:]
    if value.shuffle is not None:                  # the symbolic value is still the (C, H, W) before the split
        channels, rest = value.symbolic.shape[0], list(value.symbolic.shape[1:])
        if value.shuffle[0] == "swapped" and target in ([channels] + rest, [-1] + rest):
            return Value(ChannelShuffle(value.shuffle[1])(value.symbolic))
        raise GlassnetError(f"{where}: a channel shuffle written out must be x.view(n, g, c // g, h, w), "
                            f"transpose(1, 2), then a reshape back to (n, c, h, w). Received: {dims}")
    if len(sample) == 3 and len(target) == 4 and target[2:] == list(sample[1:]) and target[0] > 0 \
            and sample[0] % target[0] == 0 and target[1] in (-1, sample[0] // target[0]):
        return Value(value.symbolic, shuffle=("split", target[0]))
    if len(target) == 1 and target[0] in (-1, math.prod(sample)):
        return Value(value.symbolic if value.pooled else Flatten()(value.symbolic))
    return Value(Reshape(tuple(target))(value.symbolic))        # C order: (N, C) reads as (N, C, 1, 1) would


def transposed(value, dims, where):
    """``x.transpose(1, 2)`` of a channel shuffle's 5-axis view; no other transpose has a glassnet layer."""
    if value.shuffle is not None and value.shuffle[0] == "split" and sorted(dims) == [1, 2]:
        return Value(value.symbolic, shuffle=("swapped", value.shuffle[1]))
    raise GlassnetError(f"{where}: transpose{tuple(dims)} is supported only as a channel shuffle's "
                        f"(x.view(n, g, c // g, h, w).transpose(1, 2))")
