"""Symbolic values: how a graph model is written down before any data flows (Keras' functional style).

>>> x = gn.Input((1, 8, 8))                      # one sample's shape, no batch axis
>>> h = gn.Conv2D(1, 4, 3, padding=1, rng=0)(x)  # a layer called on a symbolic value records a node
>>> h.shape
(4, 8, 8)
>>> y = gn.Add()([h, h])                         # merges take a list

Each call of a layer on symbolic values makes a ``Node`` (the layer, its input values) and returns the
node's output value, whose shape the layer computes from its inputs' shapes. A shape that does not fit
(a Dense of 10 inputs on 12 features, an Add of (4, 8, 8) and (4, 4, 4)) fails here, naming the layer
and the shapes, long before any data flows. ``glassnet.models.Model`` turns the nodes between some
inputs and outputs into one run order.
"""
import itertools

from ..errors import GlassnetError

MAX_INPUT_DIMS = 8
_ids = itertools.count()


class SymbolicTensor:
    """A value in a graph being built: one sample's ``shape`` and the ``node`` that computes it
    (None for a model input made by ``Input``)."""

    def __init__(self, shape, node=None, name=None):
        self.shape = tuple(shape)
        self.node = node
        self.id = next(_ids)
        self.name = name or (f"input_{self.id}" if node is None else None)

    def __repr__(self):
        source = "Input" if self.node is None else type(self.node.layer).__name__
        return f"<symbolic {source} shape={self.shape}>"


class Node:
    """One call of ``layer`` on ``inputs`` (a list of SymbolicTensor); ``output`` is what it returns."""

    def __init__(self, layer, inputs, output_shape):
        self.layer = layer
        self.inputs = list(inputs)
        self.output = SymbolicTensor(output_shape, node=self)


def Input(shape, name=None):
    """A model input: ``shape`` is one sample's shape without the batch axis, e.g. ``(1, 28, 28)``.

    Returns a SymbolicTensor to call layers on; ``gn.Model(inputs, outputs)`` collects what follows.
    """
    try:
        dims = tuple(shape)
    except TypeError:
        dims = None
    if (dims is None or not 1 <= len(dims) <= MAX_INPUT_DIMS
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in dims)):
        raise GlassnetError(f"Input: shape must be one sample's shape, a tuple of 1 to {MAX_INPUT_DIMS} positive "
                            f"ints without the batch axis, e.g. (1, 28, 28). Received: {shape!r}")
    if name is not None and not isinstance(name, str):
        raise GlassnetError(f"Input: name must be a string or None. Received: {name!r}")
    return SymbolicTensor(dims, name=name)


def is_symbolic(value):
    """True for a SymbolicTensor or a non-empty list/tuple of them."""
    if isinstance(value, SymbolicTensor):
        return True
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(v, SymbolicTensor) for v in value)


def connect(layer, value):
    """Record ``layer`` called on ``value`` (one SymbolicTensor, or a list for a merge) and return the output.

    The layer's ``output_shape`` computes the output's shape (a list of shapes for a merge); a
    GlassnetError from it is re-raised naming the call; any other exception is a shape the layer
    cannot take.
    """
    name = type(layer).__name__
    merges = getattr(layer, "merges", False)
    if merges:
        if not isinstance(value, (list, tuple)) or len(value) < 2:
            raise GlassnetError(f"{name}: expected a list of at least 2 symbolic values to merge. Received: {value!r}")
        inputs, shapes = list(value), [v.shape for v in value]
    else:
        if not isinstance(value, SymbolicTensor):
            raise GlassnetError(f"{name}: takes one symbolic value; only merges (Add, Concatenate, Multiply) "
                                f"take a list. Received: {value!r}")
        inputs, shapes = [value], value.shape
    try:
        layer.check_input_shape(shapes)
        shape = layer.output_shape(shapes)
    except GlassnetError as error:
        raise GlassnetError(f"{name} called on shape {_shapes_text(shapes)}: {error}") from None
    except (TypeError, ValueError, IndexError) as error:
        raise GlassnetError(f"{name} cannot take input shape {_shapes_text(shapes)} ({error})") from None
    return Node(layer, inputs, shape).output


def _shapes_text(shapes):
    return " and ".join(map(str, shapes)) if isinstance(shapes, list) else str(shapes)
