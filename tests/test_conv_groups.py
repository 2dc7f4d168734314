"""Grouped, depthwise and dilated Conv2D against PyTorch float64, on every array library of
tests/backends.py: groups 1, 2 and all channels, channel multipliers 1 and 3, dilation 1-3,
strides 1-3, paddings including 'same', non-square kernels and inputs."""
import itertools
import zlib

import numpy as np
import pytest
import torch.nn.functional as F

import glassnet as gn
from reference import assert_matches, torch_forward_backward

GROUPINGS = [("groups 1", 1), ("groups 2", 2), ("depthwise", "all")]
MULTIPLIERS = [1, 3]
DILATIONS = [1, 2, 3, (1, 2), (3, 1)]
STRIDES = [1, 2, 3, (2, 1)]
KERNELS = [3, (2, 3), (3, 1)]
PADDINGS = [0, 1, (2, 1), "same"]


def grid():
    """Each grouping x multiplier x dilation x stride, with kernel, padding, batch and a
    non-square input size chosen in turn ('same' only where PyTorch takes it: stride 1)."""
    configs = []
    for index, (grouping, multiplier, dilation, stride) in enumerate(
            itertools.product(GROUPINGS, MULTIPLIERS, DILATIONS, STRIDES)):
        name, groups = grouping
        in_channels = 4 if groups != 1 else 3
        groups = in_channels if groups == "all" else groups
        out_channels = groups * multiplier if groups > 1 else multiplier * 2
        kernel = KERNELS[index % len(KERNELS)]
        padding = PADDINGS[index % len(PADDINGS)]
        if padding == "same" and stride != 1:
            padding = 1
        height, width = 9 + index % 3, 11 + index % 4
        configs.append(pytest.param(in_channels, out_channels, kernel, stride, padding, dilation, groups,
                                    1 + index % 2, height, width, id=f"{name}-m{multiplier}-d{dilation}-s{stride}-"
                                    f"k{kernel}-p{padding}-{height}x{width}".replace(" ", "")))
    return configs


GRID = grid()


def test_grid_covers_the_issue():
    assert len(GRID) >= 100


def torch_padding(padding):
    return padding if isinstance(padding, (str, int)) else tuple(padding)


@pytest.mark.parametrize("cin, cout, kernel, stride, padding, dilation, groups, batch, height, width", GRID)
def test_grouped_dilated_conv_matches_torch(backend, cin, cout, kernel, stride, padding, dilation, groups,
                                            batch, height, width):
    rng = np.random.default_rng(zlib.crc32(repr((cin, cout, kernel, stride, padding, dilation, groups)).encode()))
    conv = gn.Conv2D(cin, cout, kernel, stride=stride, padding=padding, dilation=dilation, groups=groups, rng=rng)
    weight, bias = conv.params["weight"].copy(), conv.params["bias"].copy()
    assert weight.shape == (cout, cin // groups) + conv.kernel_size
    x = rng.standard_normal((batch, cin, height, width))
    run = backend.forward_backward(conv, x, rng.standard_normal)

    def torch_conv(x_t, w_t, b_t):
        return F.conv2d(x_t, w_t, b_t, stride=stride, padding=torch_padding(padding), dilation=dilation,
                        groups=groups)

    ref_out, ref_dx, (ref_dw, ref_db) = torch_forward_backward(torch_conv, x, run.dy, [weight, bias])
    assert_matches(run.out, ref_out)
    assert_matches(run.dx, ref_dx)
    assert_matches(run.grads["weight"], ref_dw)
    assert_matches(run.grads["bias"], ref_db)
    assert run.out.shape[1:] == conv.output_shape(x.shape[1:])


@pytest.mark.parametrize("block_values", [5, 900, 1 << 15])
@pytest.mark.parametrize("stride, dilation, padding", [(1, 1, 1), (2, 1, 1), (3, 2, (2, 1)), ((2, 1), (1, 2), 0),
                                                       (1, 2, "same")])
def test_depthwise_rows_match_torch_whatever_the_block(monkeypatch, block_values, stride, dilation, padding):
    # NumPy, one filter per channel: the channels' phase rows (depthwise.py) cut into blocks of whole rows
    # (900: one to a few channels), of pieces of one row (5) or of everything (1 << 15)
    from glassnet.nn.layers import depthwise
    from glassnet.nn.layers.windows import pad_images
    monkeypatch.setattr(depthwise, "BLOCK_VALUES", block_values)
    monkeypatch.setattr(depthwise, "COPY_VALUES", block_values)            # the phases copied by channels too
    rng = np.random.default_rng(zlib.crc32(repr((stride, dilation, padding)).encode()))
    conv = gn.Conv2D(5, 5, 3, stride=stride, padding=padding, dilation=dilation, groups=5, rng=rng)
    weight, bias = conv.params["weight"].copy(), conv.params["bias"].copy()
    x = rng.standard_normal((3, 5, 10, 9))
    out = conv.forward(x)
    dy = rng.standard_normal(out.shape)
    dx = conv.backward(dy)
    ref_out, ref_dx, (ref_dw, ref_db) = torch_forward_backward(
        lambda a, w, b: F.conv2d(a, w, b, stride=stride, padding=torch_padding(padding), dilation=dilation,
                                 groups=5), x, dy, [weight, bias])
    assert_matches(out, ref_out)
    assert_matches(dx, ref_dx)
    assert_matches(conv.grads["weight"], ref_dw)
    assert_matches(conv.grads["bias"], ref_db)
    # the forward pass: the same products summed in the same order as the per-tap views of the padded input
    per_tap = depthwise.depthwise_forward(pad_images(x, conv.pads), weight, 1, conv.stride, conv.dilation,
                                          out.shape[2:]) + bias.reshape(1, 5, 1, 1)
    np.testing.assert_array_equal(out, per_tap)


@pytest.mark.parametrize("keep", ["keep", "input"])
def test_grouped_conv_gives_the_same_gradients_whether_it_keeps_columns_or_input(monkeypatch, keep):
    from glassnet.nn.layers import conv as conv_module
    monkeypatch.setattr(conv_module, "COLUMN_MEMORY", keep)
    rng = np.random.default_rng(5)
    conv = gn.Conv2D(6, 9, 3, padding=2, dilation=2, groups=3, rng=rng)
    x, dy = rng.standard_normal((2, 6, 8, 7)), rng.standard_normal((2, 9, 8, 7))
    out = conv.forward(x)
    dx = conv.backward(dy)
    ref_out, ref_dx, (ref_dw, ref_db) = torch_forward_backward(
        lambda a, w, b: F.conv2d(a, w, b, padding=2, dilation=2, groups=3), x, dy,
        [conv.params["weight"], conv.params["bias"]])
    assert_matches(out, ref_out)
    assert_matches(dx, ref_dx)
    assert_matches(conv.grads["weight"], ref_dw)


def test_float32_grouped_conv_agrees_with_float64():
    rng = np.random.default_rng(2)
    conv64 = gn.Conv2D(8, 16, 3, padding="same", dilation=2, groups=8, rng=1)
    conv32 = gn.Conv2D(8, 16, 3, padding="same", dilation=2, groups=8, rng=1, dtype=np.float32)
    x, dy = rng.standard_normal((3, 8, 10, 10)), rng.standard_normal((3, 16, 10, 10))
    out64, out32 = conv64.forward(x), conv32.forward(x.astype(np.float32))
    dx64, dx32 = conv64.backward(dy), conv32.backward(dy.astype(np.float32))
    assert out32.dtype == np.float32 and dx32.dtype == np.float32
    np.testing.assert_allclose(out32, out64, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx32, dx64, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(conv32.grads["weight"], conv64.grads["weight"], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kwargs, words", [
    (dict(groups=3), "divisible by groups"),
    (dict(groups=0), "groups"),
    (dict(dilation=0), "dilation"),
    (dict(dilation=(1, 2, 3)), "dilation"),
])
def test_bad_groups_or_dilation_is_named(kwargs, words):
    with pytest.raises(gn.GlassnetError, match=words):
        gn.Conv2D(4, 8, 3, **kwargs)


def test_dilated_kernel_larger_than_input_is_named():
    conv = gn.Conv2D(1, 1, 3, dilation=4, rng=0)
    with pytest.raises(gn.GlassnetError, match="dilation"):
        conv.forward(np.zeros((1, 1, 7, 7)))


def test_grouped_dilated_conv_round_trips_through_save(tmp_path):
    model = gn.Sequential([gn.Conv2D(4, 8, 3, dilation=2, groups=4, padding="same", rng=0), gn.ReLU()])
    x = np.random.default_rng(0).standard_normal((2, 4, 9, 9))
    gn.save(model, tmp_path / "m.glassnet")
    loaded = gn.load(tmp_path / "m.glassnet")
    conv = loaded.layers[0]
    assert (conv.groups, conv.dilation) == (4, (2, 2))
    np.testing.assert_array_equal(loaded.forward(x), model.forward(x))
