"""Weight initialisers. Each takes an explicit ``np.random.Generator``.

fan_in = in_features (Dense) or in_channels * kh * kw (Conv2D);
fan_out = out_features or out_channels * kh * kw.

- ``torch``: PyTorch's default for nn.Linear / nn.Conv2d, i.e. kaiming_uniform with
  a = sqrt(5), which is U(-1/sqrt(fan_in), 1/sqrt(fan_in)); bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
- ``he``: N(0, 2 / fan_in) (He et al. 2015, for ReLU); bias zero.
- ``glorot``: U(-sqrt(6 / (fan_in + fan_out)), +...) (Glorot & Bengio 2010); bias zero.
"""
import numpy as np

from ..errors import GlassnetError

SCHEMES = ("torch", "he", "glorot")


def torch_default(shape, fan_in, rng, dtype=np.float64):
    bound = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def he_normal(shape, fan_in, rng, dtype=np.float64):
    return (rng.standard_normal(size=shape) * np.sqrt(2.0 / fan_in)).astype(dtype)


def glorot_uniform(shape, fan_in, fan_out, rng, dtype=np.float64):
    bound = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def initial_weight(scheme, shape, fan_in, fan_out, rng, dtype, owner):
    """Weight array of ``shape`` drawn by ``scheme`` (one of SCHEMES)."""
    if scheme == "torch":
        return torch_default(shape, fan_in, rng, dtype)
    if scheme == "he":
        return he_normal(shape, fan_in, rng, dtype)
    if scheme == "glorot":
        return glorot_uniform(shape, fan_in, fan_out, rng, dtype)
    raise GlassnetError(f"{owner}: weight_init must be one of {SCHEMES}. Received: weight_init={scheme!r}")


def initial_bias(scheme, shape, fan_in, rng, dtype):
    """Bias of ``shape``: PyTorch's uniform for "torch", zeros otherwise."""
    if scheme == "torch":
        return torch_default(shape, fan_in, rng, dtype)
    return np.zeros(shape, dtype=dtype)
