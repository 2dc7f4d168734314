"""Winograd's F(2x2, 3x3) for 3x3 stride-1 convolutions (nn/layers/winograd.py).

Reference values: PyTorch's conv2d in float64 (forward, dL/dx, dL/dW, dL/db at 1e-10 relative), and for
float32 the same layer in float64. The transforms' one-axis identity is checked against the direct sum
written out by hand. Which layers take Winograd (``winograd_pays``) is a speed rule; here it is forced
on (both thresholds 0) so that small layers run through it.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import glassnet as gn
from glassnet.nn.layers import conv as conv_module
from glassnet.nn.layers.windows import pad_images
from glassnet.nn.layers.winograd import G, winograd_forward, winograd_weights
from reference import assert_matches, torch_forward_backward


@pytest.fixture
def always_winograd(monkeypatch):
    monkeypatch.setattr(conv_module, "WINOGRAD_MIN_CHANNELS", 0)
    monkeypatch.setattr(conv_module, "WINOGRAD_MIN_WORK", 0)


def test_one_axis_identity_is_the_direct_sum():
    """y0 = d0 g0 + d1 g1 + d2 g2 and y1 = d1 g0 + d2 g1 + d3 g2 from four products (winograd.py's docstring)."""
    rng = np.random.default_rng(0)
    d, g = rng.standard_normal(4), rng.standard_normal(3)
    transformed = G @ g                                   # (g0, (g0+g1+g2)/2, (g0-g1+g2)/2, g2)
    m = np.array([d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3]]) * transformed
    direct = np.array([d[0] * g[0] + d[1] * g[1] + d[2] * g[2], d[1] * g[0] + d[2] * g[1] + d[3] * g[2]])
    np.testing.assert_allclose([m[0] + m[1] + m[2], m[1] - m[2] - m[3]], direct, rtol=1e-14)


@pytest.mark.parametrize("height, width", [(8, 8), (9, 7), (3, 3), (4, 11), (13, 6)])
@pytest.mark.parametrize("budget", [1, 6000, 10 ** 9])
def test_winograd_forward_matches_torch(height, width, budget):
    """Odd sizes (the last tile row/column half used) and budgets giving one tile row of one sample per
    block, a few rows, and one block."""
    rng = np.random.default_rng(height * 100 + width)
    x, weight = rng.standard_normal((3, 5, height, width)), rng.standard_normal((4, 5, 3, 3))
    out = winograd_forward(pad_images(x, (1, 1, 1, 1)), winograd_weights(weight), (height, width), budget)
    assert out.flags.c_contiguous
    assert_matches(out, F.conv2d(torch.tensor(x), torch.tensor(weight), padding=1))


@pytest.mark.parametrize("padding", [0, 1, 2, 3, (1, 0), (0, 2), "same"])
@pytest.mark.parametrize("budget", [1, 10 ** 9])
def test_conv2d_by_winograd_matches_torch_forward_and_every_gradient(always_winograd, monkeypatch, padding,
                                                                      budget):
    """Forward, dL/dx (Winograd again, on dy padded by 2 - pad or cropped where a pad passes 2) and the
    weight gradient (columns, block by block at budget 1), float64, against PyTorch."""
    monkeypatch.setattr(conv_module, "BLOCKED_COLUMN_BYTES", budget)
    rng = np.random.default_rng(7)
    conv = gn.Conv2D(6, 5, 3, padding=padding, rng=rng)
    weight, bias = conv.params["weight"].copy(), conv.params["bias"].copy()
    x = rng.standard_normal((2, 6, 9, 8))
    out = conv.forward(x)
    assert isinstance(conv._cache[0], conv_module.WinogradInput)
    dy = rng.standard_normal(out.shape)
    dx = conv.backward(dy)
    pad = padding if isinstance(padding, (str, int)) else tuple(padding)
    ref_out, ref_dx, (ref_dw, ref_db) = torch_forward_backward(
        lambda x_t, w_t, b_t: F.conv2d(x_t, w_t, b_t, padding=pad), x, dy, [weight, bias])
    assert_matches(out, ref_out)
    assert_matches(dx, ref_dx)
    assert_matches(conv.grads["weight"], ref_dw)
    assert_matches(conv.grads["bias"], ref_db)
    conv.forward(x)
    conv.backward_parameters(dy)                          # a first layer: the parameters' gradients only
    assert_matches(conv.grads["weight"], ref_dw)


def test_float32_winograd_agrees_with_float64(always_winograd):
    """float32 through Winograd against float64 through it: float32's rounding, nothing more."""
    rng = np.random.default_rng(8)
    conv64 = gn.Conv2D(32, 48, 3, padding=1, rng=3)
    conv32 = gn.Conv2D(32, 48, 3, padding=1, rng=3, dtype=np.float32)
    x = rng.standard_normal((4, 32, 15, 16))
    out64, out32 = conv64.forward(x), conv32.forward(x.astype(np.float32))
    assert out32.dtype == np.float32 and isinstance(conv32._cache[0], conv_module.WinogradInput)
    assert np.abs(out32 - out64).max() <= 1e-5 * np.abs(out64).max()
    dy = rng.standard_normal(out64.shape)
    dx64, dx32 = conv64.backward(dy), conv32.backward(dy.astype(np.float32))
    assert dx32.dtype == np.float32
    assert np.abs(dx32 - dx64).max() <= 1e-5 * np.abs(dx64).max()
    assert np.abs(conv32.grads["weight"] - conv64.grads["weight"]).max() <= 1e-5 * np.abs(conv64.grads["weight"]).max()


def test_winograd_is_only_for_3x3_stride_1_ungrouped_undilated(always_winograd):
    assert gn.Conv2D(4, 4, 3).winograd
    for other in (dict(kernel_size=5), dict(kernel_size=3, stride=2), dict(kernel_size=3, dilation=2),
                  dict(kernel_size=3, groups=2), dict(kernel_size=(3, 1))):
        conv = gn.Conv2D(4, 4, **other)
        assert not conv.winograd
        conv.forward(np.zeros((1, 4, 9, 9)))
        assert not isinstance(conv._cache[0], conv_module.WinogradInput)


def test_small_layers_keep_columns():
    """By default a layer with few channels or tiles keeps im2col (the speed rule, winograd_pays)."""
    conv = gn.Conv2D(16, 32, 3, padding=1)
    conv.forward(np.zeros((64, 16, 14, 14)))
    assert not isinstance(conv._cache[0], conv_module.WinogradInput)
    big = gn.Conv2D(128, 128, 3, padding=1, dtype=np.float32)
    big.forward(np.zeros((2, 128, 56, 56), dtype=np.float32))
    assert isinstance(big._cache[0], conv_module.WinogradInput)


def test_a_part_of_a_batch_split_takes_winograd_for_less_work(monkeypatch):
    """Inside a batch split's part the BLAS runs on one thread, where Winograd pays from less work on: its
    threshold is WINOGRAD_MIN_WORK_ONE_THREAD there (ResNet-50's 256@14 with parts of 4 samples)."""
    assert not conv_module.winograd_pays(256, 256, 4, 14, 14)                 # 256 * 196 tiles = 50,176
    conv_module.BATCH_PART.one_thread = True
    try:
        assert conv_module.winograd_pays(256, 256, 4, 14, 14) and not conv_module.winograd_pays(512, 512, 4, 7, 7)
    finally:
        conv_module.BATCH_PART.one_thread = False
    in_part, original = [], conv_module.winograd_pays
    monkeypatch.setattr(conv_module, "winograd_pays", lambda *shape: in_part.append(
        getattr(conv_module.BATCH_PART, "one_thread", False)) or original(*shape))
    monkeypatch.setenv("GLASSNET_THREADS", "2")
    network = gn.Sequential([gn.Conv2D(256, 4, 3, padding=1, rng=0), gn.Flatten()])
    x = np.random.default_rng(0).standard_normal((8, 256, 14, 14))           # 50,176 values a sample
    network.infer(x[:1])
    network.infer(x)                                                          # two parts of four
    assert in_part == [False, True, True]
    assert not getattr(conv_module.BATCH_PART, "one_thread", False)           # reset after the split
