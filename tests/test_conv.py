"""Conv2D against PyTorch float64 and a plain-loop reference, over a grid of configurations,
on every array library of tests/backends.py (same numbers as NumPy to 1e-12 on the others)."""
import itertools
import zlib

import numpy as np
import pytest
import torch.nn.functional as F

import glassnet as gn
from reference import assert_matches, loop_conv2d, torch_forward_backward

KERNELS = [1, 2, 3, 5, (2, 3), (3, 1), (1, 4), (4, 2)]
STRIDES = [1, 2, 3, (1, 2), (3, 1)]
PADDINGS = [0, 1, (1, 2), (2, 0), "valid", "same"]


def conv_grid():
    """Every kernel x stride x padding combination PyTorch accepts, with channels 1-4,
    batch 1-3 and non-square inputs chosen in turn."""
    configs = []
    for index, (kernel, stride, padding) in enumerate(itertools.product(KERNELS, STRIDES, PADDINGS)):
        if padding == "same" and stride != 1:
            continue
        in_channels = 1 + index % 4
        out_channels = 1 + (index // 4) % 4
        batch = 1 + index % 3
        height, width = 5 + index % 4, 6 + (index // 3) % 5
        configs.append((kernel, stride, padding, in_channels, out_channels, batch, height, width))
    return configs


GRID = conv_grid()


def test_grid_is_large_enough():
    assert len(GRID) >= 60


def torch_padding(padding):
    return padding if isinstance(padding, (str, int)) else tuple(padding)


@pytest.mark.parametrize("kernel, stride, padding, cin, cout, batch, height, width", GRID)
def test_conv2d_matches_torch(backend, kernel, stride, padding, cin, cout, batch, height, width):
    rng = np.random.default_rng(zlib.crc32(repr((kernel, stride, padding, cin, batch)).encode()))
    conv = gn.Conv2D(cin, cout, kernel, stride=stride, padding=padding, rng=rng)
    weight, bias = conv.params["weight"].copy(), conv.params["bias"].copy()
    x = rng.standard_normal((batch, cin, height, width))
    run = backend.forward_backward(conv, x, rng.standard_normal)

    def torch_conv(x_t, w_t, b_t):
        return F.conv2d(x_t, w_t, b_t, stride=stride, padding=torch_padding(padding))

    ref_out, ref_dx, (ref_dw, ref_db) = torch_forward_backward(torch_conv, x, run.dy, [weight, bias])
    assert_matches(run.out, ref_out)
    assert_matches(run.dx, ref_dx)
    assert_matches(run.grads["weight"], ref_dw)
    assert_matches(run.grads["bias"], ref_db)
    assert run.out.shape[1:] == conv.output_shape(x.shape[1:])


@pytest.mark.parametrize("kernel, stride, padding, cin, cout, batch, height, width", GRID[::7])
def test_conv2d_matches_plain_loops(kernel, stride, padding, cin, cout, batch, height, width):
    rng = np.random.default_rng(7)
    conv = gn.Conv2D(cin, cout, kernel, stride=stride, padding=padding, rng=rng)
    x = rng.standard_normal((batch, cin, height, width))
    expected = loop_conv2d(x, conv.params["weight"], conv.params["bias"], conv.stride, conv.pads)
    assert_matches(conv.forward(x), expected)


def test_same_padding_even_kernel_keeps_size_and_pads_bottom_right():
    conv = gn.Conv2D(1, 1, (2, 4), padding="same", rng=0)
    assert conv.pads == (0, 1, 1, 2)  # PyTorch: total k-1, the extra at the end
    assert conv.forward(np.ones((1, 1, 5, 7))).shape == (1, 1, 5, 7)


def test_conv2d_without_bias_matches_torch(backend):
    rng = np.random.default_rng(3)
    conv = gn.Conv2D(2, 3, 3, stride=2, padding=1, bias=False, rng=rng)
    assert "bias" not in conv.params
    weight = conv.params["weight"].copy()
    x = rng.standard_normal((2, 2, 7, 6))
    run = backend.forward_backward(conv, x, rng.standard_normal)
    ref_out, ref_dx, (ref_dw,) = torch_forward_backward(
        lambda x_t, w_t: F.conv2d(x_t, w_t, stride=2, padding=1), x, run.dy, [weight])
    assert_matches(run.out, ref_out)
    assert_matches(run.dx, ref_dx)
    assert_matches(run.grads["weight"], ref_dw)
    assert set(run.grads) == {"weight"}
