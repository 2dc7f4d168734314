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


@pytest.mark.parametrize("kernel, stride, padding, cin, cout, batch, height, width", GRID[::3])
@pytest.mark.parametrize("rows", [0, 1000])
def test_whole_batch_and_by_sample_columns_both_match_torch(monkeypatch, rows, kernel, stride, padding, cin, cout,
                                                            batch, height, width):
    """NumPy runs a convolution with at most SAMPLE_COLUMN_ROWS rows of columns sample by sample
    (``im2col_by_sample``), the rest through the whole batch's columns: here every case both ways."""
    from glassnet.nn.layers import conv as conv_module
    monkeypatch.setattr(conv_module, "SAMPLE_COLUMN_ROWS", rows)
    rng = np.random.default_rng(zlib.crc32(repr((kernel, stride, padding, cin, batch, rows)).encode()))
    conv = gn.Conv2D(cin, cout, kernel, stride=stride, padding=padding, rng=rng)
    weight, bias = conv.params["weight"].copy(), conv.params["bias"].copy()
    x = rng.standard_normal((batch, cin, height, width))
    out = conv.forward(x)
    assert isinstance(conv._cache[0], conv_module.SampleColumns) == (rows > 0 and not conv.pointwise)
    dy = rng.standard_normal(out.shape)
    dx = conv.backward(dy)
    ref_out, ref_dx, (ref_dw, ref_db) = torch_forward_backward(
        lambda x_t, w_t, b_t: F.conv2d(x_t, w_t, b_t, stride=stride, padding=torch_padding(padding)), x, dy,
        [weight, bias])
    assert_matches(out, ref_out)
    assert_matches(dx, ref_dx)
    assert_matches(conv.grads["weight"], ref_dw)
    assert_matches(conv.grads["bias"], ref_db)
    conv.forward(x)
    conv.backward_parameters(dy)
    assert_matches(conv.grads["weight"], ref_dw)
    assert_matches(conv.grads["bias"], ref_db)


@pytest.mark.parametrize("bias", [True, False])
def test_by_sample_columns_carry_the_bias_in_the_product(bias):
    """Sample by sample, the bias rides in the product: a row of ones under each sample's columns, the bias a
    last column of the weights; its gradient comes out of the weight gradient's product. With and without a
    bias, against PyTorch (float64), and the columns are im2col_by_sample's with that row added."""
    from glassnet.nn.layers import conv as conv_module
    from glassnet.nn.layers.windows import im2col_by_sample
    rng = np.random.default_rng(21)
    conv = gn.Conv2D(2, 5, 3, stride=(1, 2), padding=1, bias=bias, rng=rng)
    x, weight = rng.standard_normal((3, 2, 7, 8)), conv.params["weight"].copy()
    out = conv.forward(x)
    cols = conv._cache[0][0]
    assert isinstance(conv._cache[0], conv_module.SampleColumns) and cols.shape == (3, 18 + bias, 4 * 7)
    plain = im2col_by_sample(np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))), (3, 3), (1, 2), (7, 4))
    np.testing.assert_array_equal(cols[:, :18], plain)
    if bias:
        np.testing.assert_array_equal(cols[:, 18], np.ones((3, 28)))
    dy = rng.standard_normal(out.shape)
    dx = conv.backward(dy)
    parameters = [weight] + ([conv.params["bias"].copy()] if bias else [])
    ref_out, ref_dx, ref_grads = torch_forward_backward(
        lambda x_t, w_t, *b_t: F.conv2d(x_t, w_t, *b_t, stride=(1, 2), padding=1), x, dy, parameters)
    assert_matches(out, ref_out)
    assert_matches(dx, ref_dx)
    assert_matches(conv.grads["weight"], ref_grads[0])
    assert conv.grads["weight"].flags.c_contiguous
    assert sorted(conv.grads) == (["bias", "weight"] if bias else ["weight"])
    if bias:
        assert_matches(conv.grads["bias"], ref_grads[1])


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


@pytest.mark.parametrize("mode", ["keep", "input", "auto"])
def test_what_forward_keeps_changes_memory_not_numbers(monkeypatch, mode):
    """Columns kept or made again in backward: the same gradients bit for bit; "auto" keeps a layer's
    columns only up to KEPT_COLUMN_BYTES (here lowered so that the first case keeps, the second not)."""
    from glassnet.nn.layers import conv as conv_module
    monkeypatch.setattr(conv_module, "SAMPLE_COLUMN_ROWS", 0)     # columns of the whole batch, not sample by sample
    rng = np.random.default_rng(3)
    x, dy = rng.standard_normal((4, 3, 9, 9)), rng.standard_normal((4, 5, 9, 9))
    reference = gn.Conv2D(3, 5, 3, padding=1, rng=0)
    monkeypatch.setattr(conv_module, "COLUMN_MEMORY", "keep")
    reference.forward(x)
    expected = reference.backward(dy), dict(reference.grads)
    monkeypatch.setattr(conv_module, "COLUMN_MEMORY", mode)
    monkeypatch.setattr(conv_module, "KEPT_COLUMN_BYTES", 27 * 4 * 81 * 8)       # exactly this batch's columns
    for batch in (4, 2):                                   # both within the limit: kept under "auto"
        layer = gn.Conv2D(3, 5, 3, padding=1, rng=0)
        layer.forward(x[:batch])
        kept = layer._cache[0]
        assert kept.ndim == (2 if mode == "keep" or mode == "auto" else 4)
    monkeypatch.setattr(conv_module, "KEPT_COLUMN_BYTES", 100)
    layer = gn.Conv2D(3, 5, 3, padding=1, rng=0)
    layer.forward(x)
    assert layer._cache[0].ndim == (2 if mode == "keep" else 4)
    np.testing.assert_array_equal(layer.backward(dy), expected[0])
    for key, grad in expected[1].items():
        np.testing.assert_array_equal(layer.grads[key], grad)


@pytest.mark.parametrize("budget", [1, 9 * 4 * 8 * 40, 10 ** 9])
@pytest.mark.parametrize("kernel, stride, padding, dilation, groups", [
    (3, 1, 1, 1, 1), (3, 2, 1, 1, 1), ((2, 3), (2, 1), (1, 0), 1, 2), (3, 1, 2, 2, 1), (5, 3, 2, 1, 4),
    (7, 2, 3, 1, 1)])
def test_large_columns_made_block_by_block_match_torch(monkeypatch, budget, kernel, stride, padding, dilation,
                                                        groups):
    """Columns beyond BLOCKED_COLUMN_BYTES are made a block of samples or a band of output rows at a time
    (conv_blocks.py): budget 1 gives one output row of one sample per block, the middle one a few rows,
    10**9 one block; forward and every gradient as PyTorch's (float64)."""
    from glassnet.nn.layers import conv as conv_module
    monkeypatch.setattr(conv_module, "BLOCKED_COLUMN_BYTES", budget)
    rng = np.random.default_rng(11)
    conv = gn.Conv2D(4, 8, kernel, stride=stride, padding=padding, dilation=dilation, groups=groups, rng=rng)
    weight, bias = conv.params["weight"].copy(), conv.params["bias"].copy()
    x = rng.standard_normal((3, 4, 13, 11))
    out = conv.forward(x)
    dy = rng.standard_normal(out.shape)
    dx = conv.backward(dy)

    def torch_conv(x_t, w_t, b_t):
        return F.conv2d(x_t, w_t, b_t, stride=stride, padding=torch_padding(padding), dilation=dilation,
                        groups=groups)

    ref_out, ref_dx, (ref_dw, ref_db) = torch_forward_backward(torch_conv, x, dy, [weight, bias])
    assert_matches(out, ref_out)
    assert_matches(dx, ref_dx)
    assert_matches(conv.grads["weight"], ref_dw)
    assert_matches(conv.grads["bias"], ref_db)


@pytest.mark.parametrize("kernel, padding, dilation", [(3, 1, 1), (5, 2, 1), ((1, 3), (0, 1), 1), ((3, 1), (1, 0), 1),
                                                       (3, 2, 2), (2, "same", 1), (3, (2, 1), 1), (4, "same", 1),
                                                       (1, 0, 1), (7, 3, 1)])     # 7: shifts wider than W = 2
@pytest.mark.parametrize("shape", [(2, 3, 6, 7), (3, 2, 1, 5), (1, 4, 9, 2)])
def test_im2col_and_col2im_as_flat_shifts_give_the_same_values(kernel, padding, dilation, shape):
    # stride 1 with the output as wide as the input: each tap one flat shift of the (N, OH*OW) blocks;
    # col2im adds the same values in the same order
    from glassnet.nn.layers.windows import (col2im, col2im_same_width, crop_padding, im2col, im2col_same_width,
                                            pad_images)
    conv = gn.Conv2D(shape[1], 2, kernel, padding=padding, dilation=dilation, rng=0)
    N, C, H, W = shape
    top, bottom, left, right = conv.pads
    OH, OW = conv.output_shape(shape[1:])[1:]
    assert OW == W
    padded = (N, C, H + top + bottom, W + left + right)
    dcols = np.random.default_rng(1).standard_normal((C * conv.kernel_size[0] * conv.kernel_size[1], N * OH * OW))
    expected = crop_padding(col2im(dcols, padded, conv.kernel_size, (1, 1), (OH, OW), conv.dilation), conv.pads)
    x = np.random.default_rng(2).standard_normal(shape)
    np.testing.assert_array_equal(im2col_same_width(x, conv.kernel_size, conv.pads, (OH, OW), conv.dilation),
                                  im2col(pad_images(x, conv.pads), conv.kernel_size, (1, 1), (OH, OW), conv.dilation))
    ours = col2im_same_width(dcols.copy(), shape, conv.kernel_size, conv.pads, (OH, OW), conv.dilation)
    np.testing.assert_array_equal(ours, expected)
    assert ours.flags.c_contiguous
    loop = np.zeros(padded)                                      # every column entry back onto its pixel
    cols = dcols.reshape(C, conv.kernel_size[0], conv.kernel_size[1], N, OH, OW)
    for c, r, s, n, y, x in itertools.product(*map(range, cols.shape)):
        loop[n, c, y + r * conv.dilation[0], x + s * conv.dilation[1]] += cols[c, r, s, n, y, x]
    np.testing.assert_allclose(ours, crop_padding(loop, conv.pads), rtol=1e-12, atol=1e-12)
