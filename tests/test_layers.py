"""Dense, Flatten, Dropout, BatchNorm2D and the activations against PyTorch float64, on every array
library of tests/backends.py."""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import glassnet as gn
from backends import same_as_numpy
from glassnet.backend import to_numpy
from reference import assert_matches, tensor, torch_forward_backward


@pytest.mark.parametrize("batch, fan_in, fan_out", [(1, 1, 1), (3, 5, 2), (7, 12, 10), (2, 64, 3)])
def test_dense_matches_torch(backend, batch, fan_in, fan_out):
    rng = np.random.default_rng(batch * fan_in)
    dense = gn.Dense(fan_in, fan_out, rng=rng)
    weight, bias = dense.params["weight"].copy(), dense.params["bias"].copy()
    x = rng.standard_normal((batch, fan_in))
    run = backend.forward_backward(dense, x, rng.standard_normal)
    # glassnet weight is (in, out); torch's linear wants (out, in)
    ref_out, ref_dx, (ref_dw, ref_db) = torch_forward_backward(
        lambda x_t, w_t, b_t: x_t @ w_t + b_t, x, run.dy, [weight, bias])
    assert_matches(run.out, ref_out)
    assert_matches(run.dx, ref_dx)
    assert_matches(run.grads["weight"], ref_dw)
    assert_matches(run.grads["bias"], ref_db)
    linear = torch.nn.Linear(fan_in, fan_out)
    with torch.no_grad():
        linear.weight.copy_(tensor(weight.T))
        linear.bias.copy_(tensor(bias))
    assert_matches(run.out, linear(tensor(x)))


def test_flatten_keeps_chw_order_like_torch(backend):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 4, 5))
    run = backend.forward_backward(gn.Flatten(), x, rng.standard_normal)
    ref_out, ref_dx, _ = torch_forward_backward(lambda x_t: torch.flatten(x_t, 1), x, run.dy)
    assert_matches(run.out, ref_out)
    assert_matches(run.dx, ref_dx)


ACTIVATIONS = [
    (gn.ReLU, {}, F.relu),
    (gn.LeakyReLU, {"alpha": 0.01}, lambda t: F.leaky_relu(t, 0.01)),
    (gn.LeakyReLU, {"alpha": 0.3}, lambda t: F.leaky_relu(t, 0.3)),
    (gn.Sigmoid, {}, torch.sigmoid),
    (gn.Tanh, {}, torch.tanh),
    (gn.Identity, {}, lambda t: t * 1.0),
    (gn.Softmax, {}, lambda t: torch.softmax(t, dim=1)),
]


@pytest.mark.parametrize("layer_class, kwargs, torch_fn", ACTIVATIONS)
@pytest.mark.parametrize("shape", [(4, 7), (2, 3, 4, 5)])
def test_activation_matches_torch(backend, layer_class, kwargs, torch_fn, shape):
    rng = np.random.default_rng(len(shape))
    x = 3 * rng.standard_normal(shape)
    x.flat[0] = 0.0  # the kink of ReLU-like functions: derivative convention must match torch
    run = backend.forward_backward(layer_class(**kwargs), x, rng.standard_normal)
    ref_out, ref_dx, _ = torch_forward_backward(torch_fn, x, run.dy)
    assert_matches(run.out, ref_out)
    assert_matches(run.dx, ref_dx)


def test_sigmoid_and_softmax_are_stable_for_huge_inputs(backend):
    x = np.array([[-1000.0, 0.0, 1000.0], [800.0, 800.0, -800.0]])
    sig = backend.forward_backward(gn.Sigmoid(), x, np.ones).out
    assert np.all(np.isfinite(sig))
    assert_matches(sig, torch.sigmoid(tensor(x)))
    soft = backend.forward_backward(gn.Softmax(), x, np.ones).out
    assert np.all(np.isfinite(soft))
    assert_matches(soft, torch.softmax(tensor(x), dim=1))


def test_dropout_inverted_scaling_mask_and_eval_identity(backend):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 40))
    dy = rng.standard_normal(x.shape)
    dropout = gn.Dropout(p=0.25, rng=np.random.default_rng(5))
    run = backend.forward_backward(dropout, x, lambda shape: dy)
    keep = np.random.default_rng(5).random(x.shape) >= 0.25  # the same generator stream, on every library
    np.testing.assert_allclose(run.out, np.where(keep, x / 0.75, 0.0), rtol=1e-15)
    assert abs(keep.mean() - 0.75) < 0.03
    np.testing.assert_allclose(run.dx, np.where(keep, dy / 0.75, 0.0), rtol=1e-15)
    dropout.eval()
    np.testing.assert_array_equal(to_numpy(dropout.forward(backend.array(x))), x)
    np.testing.assert_array_equal(to_numpy(dropout.backward(backend.array(dy))), dy)


def test_dropout_keeps_the_expected_value():
    x = np.ones((200, 500))
    out = gn.Dropout(p=0.5, rng=1).forward(x)
    assert abs(out.mean() - 1.0) < 0.01


@pytest.mark.parametrize("shape", [(4, 3, 5, 6), (2, 1, 3, 3), (5, 2, 1, 4)])
def test_batchnorm_training_matches_torch(backend, shape):
    rng = np.random.default_rng(shape[0])
    C = shape[1]
    bn = gn.BatchNorm2D(C, momentum=0.2)
    bn.params["weight"][...] = rng.standard_normal(C)
    bn.params["bias"][...] = rng.standard_normal(C)
    torch_bn = torch.nn.BatchNorm2d(C, momentum=0.2)
    with torch.no_grad():
        torch_bn.weight.copy_(tensor(bn.params["weight"]))
        torch_bn.bias.copy_(tensor(bn.params["bias"]))
    twin = copy.deepcopy(bn)                       # stays on NumPy
    backend.move(bn)
    for step in range(3):  # running statistics accumulate over several batches
        compare_batchnorm_step(backend, bn, twin, torch_bn, 2 + 3 * rng.standard_normal(shape),
                               rng.standard_normal(shape))
        assert_matches(to_numpy(bn.buffers["running_mean"]), torch_bn.running_mean)
        assert_matches(to_numpy(bn.buffers["running_var"]), torch_bn.running_var)
    # evaluation mode: running statistics, affine in x
    for layer in (bn, twin, torch_bn):
        layer.eval()
    compare_batchnorm_step(backend, bn, twin, torch_bn, rng.standard_normal(shape), rng.standard_normal(shape))


def compare_batchnorm_step(backend, bn, twin, torch_bn, x, dy):
    """One forward and backward of glassnet's BatchNorm (on ``backend``), its NumPy twin and torch's."""
    out = to_numpy(bn.forward(backend.array(x)))
    dx = to_numpy(bn.backward(backend.array(dy)))
    grads = {key: to_numpy(value) for key, value in bn.grads.items()}
    x_t = tensor(x, grad=True)
    torch_bn.zero_grad()
    ref = torch_bn(x_t)
    ref.backward(tensor(dy))
    assert_matches(out, ref)
    assert_matches(dx, x_t.grad)
    assert_matches(grads["weight"], torch_bn.weight.grad)
    assert_matches(grads["bias"], torch_bn.bias.grad)
    if not backend.is_numpy:
        same_as_numpy(out, twin.forward(x), "output")
        same_as_numpy(dx, twin.backward(dy), "dL/dx")
        for key in ("weight", "bias"):
            same_as_numpy(grads[key], twin.grads[key], f"dL/d{key}")
        for key in ("running_mean", "running_var"):
            same_as_numpy(to_numpy(bn.buffers[key]), twin.buffers[key], key)


def test_sequential_train_eval_switches_every_layer():
    model = gn.Sequential([gn.Dense(3, 3, rng=0), gn.Dropout(0.5, rng=0), gn.Dense(3, 2, rng=1)])
    model.eval()
    assert not any(layer.training for layer in model.layers)
    x = np.ones((4, 3))
    np.testing.assert_array_equal(model(x), model.forward(x))  # deterministic in eval
    model.train()
    assert all(layer.training for layer in model.layers)


def test_sequential_parameters_are_the_live_arrays():
    model = gn.Sequential([gn.Conv2D(1, 2, 3, rng=0), gn.ReLU(), gn.Flatten(), gn.Dense(2, 2, rng=0)])
    names = [name for name, _, _ in model.named_parameters()]
    assert names == ["0.weight", "0.bias", "3.weight", "3.bias"]
    model[0].params["weight"][...] = 1.0
    assert np.all(model.parameters()["0.weight"] == 1.0)
    assert model.num_params() == 2 * 9 + 2 + 4 + 2


def test_initialisers_have_the_documented_spread():
    rng = np.random.default_rng(0)
    fan_in, fan_out = 400, 300
    torch_default = gn.Dense(fan_in, fan_out, rng=rng).params["weight"]
    assert np.abs(torch_default).max() <= 1 / np.sqrt(fan_in)
    assert torch_default.std() == pytest.approx(1 / np.sqrt(3 * fan_in), rel=0.02)  # U(-b, b): b / sqrt(3)
    he = gn.Dense(fan_in, fan_out, weight_init="he", rng=rng)
    assert he.params["weight"].std() == pytest.approx(np.sqrt(2 / fan_in), rel=0.02)
    assert np.all(he.params["bias"] == 0)
    glorot = gn.Conv2D(8, 16, 3, weight_init="glorot", rng=rng).params["weight"]
    bound = np.sqrt(6 / (8 * 9 + 16 * 9))
    assert np.abs(glorot).max() <= bound and glorot.std() == pytest.approx(bound / np.sqrt(3), rel=0.05)


def test_same_seed_gives_same_weights():
    a = gn.Conv2D(2, 3, 3, rng=42).params["weight"]
    b = gn.Conv2D(2, 3, 3, rng=np.random.default_rng(42)).params["weight"]
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_by_clip_gives_pytorchs_values_signed_zeros_and_nans_included(dtype):
    """ReLU runs as np.clip(x, 0, inf) (activations.rectified, faster than np.maximum(x, 0) in NumPy 2.4):
    the same values as max(x, 0), NaN kept, and -0.0 kept as -0.0 as torch.relu keeps it."""
    from glassnet.nn.layers.activations import rectified
    x = np.array([-2.5, -0.0, 0.0, 1e-30, -1e-30, 3.0, np.inf, -np.inf, np.nan], dtype=dtype)
    expected = torch.relu(torch.tensor(x)).numpy()
    relu = gn.ReLU(dtype=dtype)
    for ours in (rectified(x), relu.forward(x[None]).ravel(), relu.infer(x[None]).ravel()):
        assert ours.dtype == dtype
        np.testing.assert_array_equal(ours, expected)                     # NaN where NaN
        np.testing.assert_array_equal(np.signbit(ours), np.signbit(expected))
    np.testing.assert_array_equal(rectified(x), np.maximum(x, 0))          # the same values as max(x, 0)
    inside = x.copy()
    assert rectified(inside, out=inside) is inside
