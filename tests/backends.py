"""The array libraries the float64 exactness suite runs on.

- ``numpy``: glassnet's default.
- ``array_api_strict``: the Array API standard and nothing more, on its non-default device
  ``Device("device1")``, with boolean indexing and data-dependent shapes switched off. Any
  NumPy-only call, any host round trip, any mix of devices fails here.
- ``torch``: PyTorch CPU tensors through array-api-compat (a second real implementation).

A test asks for the ``backend`` fixture (tests/conftest.py) and runs glassnet there through the
helpers below. On a library other than NumPy, every helper also runs an untouched copy of the
layer or model on NumPy and requires the same numbers to a relative 1e-12.
"""
import copy
from collections import namedtuple

import numpy as np

from glassnet.backend import to_namespace, to_numpy
from reference import assert_matches

SAME_AS_NUMPY = 1e-12

Pass = namedtuple("Pass", "out dx grads dy layer")   # NumPy copies of one forward and backward pass


class Backend:
    def __init__(self, name):
        self.name = name
        if name == "numpy":
            self.xp, self.device = np, None
        elif name == "array_api_strict":
            import array_api_strict
            array_api_strict.set_array_api_strict_flags(boolean_indexing=False, data_dependent_shapes=False)
            self.xp, self.device = array_api_strict, array_api_strict.Device("device1")
        elif name == "torch":
            import torch
            self.xp, self.device = torch, "cpu"
        else:
            raise ValueError(name)

    @property
    def is_numpy(self):
        return self.name == "numpy"

    def array(self, x):
        """A NumPy array (or array-like) copied into this library and device."""
        return to_namespace(np.asarray(x), self.xp, self.device)

    def move(self, thing):
        """A layer or model moved here (NumPy: left as it is)."""
        if not self.is_numpy:
            thing.to(self.xp, self.device)
        return thing

    def check_place(self, array):
        """``array`` is in this library and on this device (not silently brought back to NumPy)."""
        if self.is_numpy:
            assert isinstance(array, np.ndarray)
        else:
            from glassnet.backend import device_of, namespace
            assert not isinstance(array, np.ndarray), type(array)
            assert device_of(array) == device_of(self.array(np.zeros(1))), device_of(array)
            assert namespace(array) is namespace(self.array(np.zeros(1)))

    def forward_backward(self, layer, x, dy_for):
        """Run ``layer`` forward on ``x`` and backward on ``dy_for(output shape)`` here.

        Returns a ``Pass``: NumPy copies of the output, dL/dx, {param: gradient}, the dy used,
        and the layer itself (moved here).
        """
        twin = None if self.is_numpy else copy.deepcopy(layer)
        self.move(layer)
        out = layer.forward(self.array(x))
        self.check_place(out)
        dy = dy_for(tuple(out.shape))
        dx = layer.backward(self.array(dy))
        self.check_place(dx)
        result = Pass(to_numpy(out), to_numpy(dx), {key: to_numpy(g) for key, g in layer.grads.items()}, dy, layer)
        if twin is not None:
            same_as_numpy(result.out, twin.forward(np.asarray(x)), "output")
            same_as_numpy(result.dx, twin.backward(dy), "dL/dx")
            for key, grad in twin.grads.items():
                same_as_numpy(result.grads[key], grad, f"dL/d{key}")
            for key, buffer in twin.buffers.items():
                same_as_numpy(to_numpy(layer.buffers[key]), buffer, key)
        return result

    def loss_and_grad(self, loss, pred, target):
        """(loss value, dL/dpred as NumPy) of glassnet loss ``loss`` on this library."""
        twin = None if self.is_numpy else copy.deepcopy(loss)
        value = loss.forward(self.array(pred), target)
        grad = loss.backward()
        self.check_place(grad)
        grad = to_numpy(grad)
        if twin is not None:
            same_as_numpy(np.array(value), np.array(twin.forward(np.asarray(pred), target)), "loss")
            same_as_numpy(grad, twin.backward(), "dL/dpred")
        return value, grad


def same_as_numpy(ours, numpy_result, what, rtol=SAME_AS_NUMPY):
    try:
        assert_matches(ours, numpy_result, rtol=rtol)
    except AssertionError as error:
        raise AssertionError(f"{what}: differs from the NumPy run beyond {rtol:g}\n{error}") from None
