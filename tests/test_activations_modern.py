"""The activations of modern architectures against PyTorch float64 (forward and dL/dx) on every
array library of tests/backends.py, at their kinks, at +-1e4, and in float32."""
import math

import numpy as np
import pytest
import torch

import glassnet as gn
from glassnet.nn.layers.special import erfc
from reference import assert_matches, torch_forward_backward

KINKS = [0.0, -3.0, 3.0, 6.0, 20.0, -20.0, 1e4, -1e4, 1e-8, -1e-8, 0.5, -0.5, 2.9999, 40.0]

CASES = [   # (glassnet layer, PyTorch module)
    (lambda: gn.ReLU6(), lambda: torch.nn.ReLU6()),
    (lambda: gn.ELU(), lambda: torch.nn.ELU()),
    (lambda: gn.ELU(alpha=0.3), lambda: torch.nn.ELU(alpha=0.3)),
    (lambda: gn.SELU(), lambda: torch.nn.SELU()),
    (lambda: gn.Softplus(), lambda: torch.nn.Softplus()),
    (lambda: gn.Softplus(beta=2.0, threshold=5.0), lambda: torch.nn.Softplus(beta=2.0, threshold=5.0)),
    (lambda: gn.Softsign(), lambda: torch.nn.Softsign()),
    (lambda: gn.SiLU(), lambda: torch.nn.SiLU()),
    (lambda: gn.GELU(), lambda: torch.nn.GELU()),
    (lambda: gn.GELU(approximate="tanh"), lambda: torch.nn.GELU(approximate="tanh")),
    (lambda: gn.Hardswish(), lambda: torch.nn.Hardswish()),
    (lambda: gn.LogSoftmax(), lambda: torch.nn.LogSoftmax(dim=1)),
    (lambda: gn.LeakyReLU(0.2), lambda: torch.nn.LeakyReLU(0.2)),
]
IDS = ["relu6", "elu", "elu0.3", "selu", "softplus", "softplus-b2-t5", "softsign", "silu", "gelu", "gelu-tanh",
       "hardswish", "logsoftmax", "leakyrelu"]


def inputs(rng):
    """(3, 14, 5, 2): random values of every size, with the kinks and extremes placed in."""
    x = rng.standard_normal((3, 14, 5, 2)) * 4
    x[0, :, 0, 0] = KINKS
    x[1, :, 1, 1] = np.array(KINKS) * -1
    return x


@pytest.mark.parametrize("make, make_torch", CASES, ids=IDS)
def test_activation_matches_torch(backend, make, make_torch):
    rng = np.random.default_rng(0)
    x = inputs(rng)
    run = backend.forward_backward(make(), x, rng.standard_normal)
    out, dx, _ = torch_forward_backward(make_torch(), x, run.dy)
    assert_matches(run.out, out)
    assert_matches(run.dx, dx)


@pytest.mark.parametrize("make, make_torch", CASES, ids=IDS)
def test_activation_float32_is_finite_and_agrees_with_float64(make, make_torch):
    rng = np.random.default_rng(1)
    x = inputs(rng)
    dy = rng.standard_normal(x.shape)
    wide, narrow = make(), make()
    narrow.astype(np.float32)
    out64, out32 = wide.forward(x), narrow.forward(x.astype(np.float32))
    dx64, dx32 = wide.backward(dy), narrow.backward(dy.astype(np.float32))
    assert out32.dtype == np.float32 and dx32.dtype == np.float32
    assert np.isfinite(out32).all() and np.isfinite(dx32).all()
    np.testing.assert_allclose(out32, out64, rtol=2e-6, atol=2e-6 * np.abs(out64).max() + 1e-6)
    np.testing.assert_allclose(dx32, dx64, rtol=2e-5, atol=1e-5)


def test_hardsigmoid_matches_torch_forward_and_the_exact_derivative(backend):
    """PyTorch's float64 backward multiplies by 1/6 rounded to float32 (0.1666666716...), 3e-8 relative
    from 1/6: shown here, and glassnet's derivative checked against the hand derivation instead."""
    rng = np.random.default_rng(0)
    x = inputs(rng)
    run = backend.forward_backward(gn.Hardsigmoid(), x, rng.standard_normal)
    out, dx, _ = torch_forward_backward(torch.nn.Hardsigmoid(), x, run.dy)
    assert_matches(run.out, out)
    inside = (x > -3) & (x < 3)
    np.testing.assert_array_equal(dx, np.where(inside, run.dy * float(np.float32(1 / 6)), 0.0))
    assert_matches(run.dx, np.where(inside, run.dy / 6, 0.0))      # d/dx clip(x/6 + 1/2, 0, 1)


@pytest.mark.parametrize("num_parameters", [1, 14])
def test_prelu_matches_torch(backend, num_parameters):
    rng = np.random.default_rng(2)
    layer = gn.PReLU(num_parameters, init=0.1)
    layer.params["weight"][...] = rng.uniform(-0.5, 0.5, num_parameters)
    weight = layer.params["weight"].copy()
    x = inputs(rng)
    run = backend.forward_backward(layer, x, rng.standard_normal)
    out, dx, (dw,) = torch_forward_backward(torch.nn.functional.prelu, x, run.dy, [weight])
    assert_matches(run.out, out)
    assert_matches(run.dx, dx)
    assert_matches(run.grads["weight"], dw)


def test_prelu_with_the_wrong_channel_count_is_named():
    with pytest.raises(gn.GlassnetError, match="expected 4 channels"):
        gn.PReLU(4).forward(np.zeros((2, 3, 5, 5)))


def test_erfc_against_math_erfc_over_the_whole_range():
    z = np.linspace(-27.0, 27.0, 54001)
    reference = np.array([math.erfc(v) for v in z])
    normal = reference > 1e-290                       # below this, math.erfc itself is subnormal
    np.testing.assert_allclose(erfc(z)[normal], reference[normal], rtol=1e-12)


def test_gelu_and_selu_refuse_bad_arguments():
    with pytest.raises(gn.GlassnetError, match="approximate"):
        gn.GELU(approximate="sigmoid")
    with pytest.raises(gn.GlassnetError, match="beta"):
        gn.Softplus(beta=0)
