"""PyTorch modules for the glassnet layers PyTorch has no module for: ``Rescaling`` (x * scale + offset,
fixed), ``Reshape`` (each sample reshaped) and ``Dropout`` with a ``noise_shape`` (one draw shared along
the axes of size 1). Made on first use, since ``import glassnet`` must not import torch."""
import functools

import numpy as np

from ..nn.layers import Dropout, Rescaling, Reshape


@functools.lru_cache(maxsize=None)
def _classes(torch):
    nn = torch.nn

    class GlassnetRescaling(nn.Module):
        """x * scale + offset, with scale and offset fixed buffers (one per channel of axis 1, or one value)."""

        def __init__(self, scale, offset):
            super().__init__()
            for name, value in (("scale", scale), ("offset", offset)):
                self.register_buffer(name, torch.from_numpy(np.asarray(value, dtype=np.float64).reshape(-1)))

        def forward(self, x):
            def shaped(value):                                   # (C,) -> (1, C, 1, ...); one value stays
                return value.reshape((1, -1) + (1,) * (x.ndim - 2)) if value.numel() > 1 else value
            return x * shaped(self.scale) + shaped(self.offset)

    class GlassnetReshape(nn.Module):
        """Each sample reshaped to ``shape`` (x.reshape(N, *shape))."""

        def __init__(self, shape):
            super().__init__()
            self.shape = tuple(shape)

        def forward(self, x):
            return x.reshape((x.shape[0],) + self.shape)

    class GlassnetSharedDropout(nn.Module):
        """Inverted dropout whose mask is drawn in ``noise_shape`` (per sample) and shared along its 1s."""

        def __init__(self, p, noise_shape):
            super().__init__()
            self.p, self.noise_shape = p, tuple(noise_shape)

        def forward(self, x):
            if not self.training or self.p == 0.0:
                return x
            keep = torch.rand((x.shape[0],) + self.noise_shape, dtype=x.dtype, device=x.device) >= self.p
            return x * keep.to(x.dtype) / (1.0 - self.p)

    return GlassnetRescaling, GlassnetReshape, GlassnetSharedDropout


def fixed_module(torch, layer):
    """The module for a Rescaling, Reshape or Dropout."""
    rescaling, reshape, shared_dropout = _classes(torch)
    if isinstance(layer, Rescaling):
        return rescaling(layer.scale, layer.offset)
    if isinstance(layer, Reshape):
        return reshape(layer.shape)
    if isinstance(layer, Dropout) and layer.noise_shape is not None:
        return shared_dropout(layer.p, layer.noise_shape)
    return torch.nn.Dropout(layer.p)


def is_fixed_module(torch, module):
    """True for the modules above (torch.fx keeps them as calls rather than tracing into them)."""
    return isinstance(module, _classes(torch))


def layer_of_fixed_module(torch, module):
    """The glassnet layer a module above stands for (its buffers copied)."""
    rescaling, reshape, _ = _classes(torch)
    if isinstance(module, rescaling):
        def value(buffer):
            values = [float(v) for v in buffer.detach().cpu().double().reshape(-1)]
            return values if len(values) > 1 else values[0]
        return Rescaling(value(module.scale), value(module.offset))
    if isinstance(module, reshape):
        return Reshape(module.shape)
    return Dropout(module.p, noise_shape=module.noise_shape)
