"""The layers of real architectures against PyTorch float64 (forward, dL/dx, every parameter
gradient), on every array library of tests/backends.py: transposed convolution, pooling with
ceil_mode / dilation / count_include_pad / asymmetric pads, LRN, padding, upsampling, shuffles."""
import itertools
import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import glassnet as gn
from reference import assert_matches, torch_forward_backward


def seeded(*key):
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


# -- transposed convolution -------------------------------------------------------------------------------
def transpose_grid():
    """Every output_padding PyTorch accepts (each smaller than the stride or the dilation), for
    strides 1-3, dilations 1-2, paddings 0-2, groups 1 and 2, two kernels."""
    configs = []
    for index, (stride, dilation, padding, groups) in enumerate(itertools.product([1, 2, 3, (2, 3)], [1, 2],
                                                                                  [0, 1, (2, 1)], [1, 2])):
        sh, sw = (stride, stride) if isinstance(stride, int) else stride
        for extra in itertools.product(range(max(sh, dilation)), range(max(sw, dilation))):
            kernel = 3 if index % 2 else (2, 3)
            configs.append((stride, dilation, padding, groups, extra, kernel, 5 + index % 3, 4 + index % 2))
    return configs


TRANSPOSE_GRID = transpose_grid()


def test_transpose_grid_is_large():
    assert len(TRANSPOSE_GRID) >= 150


@pytest.mark.parametrize("stride, dilation, padding, groups, output_padding, kernel, height, width", TRANSPOSE_GRID)
def test_conv_transpose_matches_torch(backend, stride, dilation, padding, groups, output_padding, kernel,
                                      height, width):
    rng = seeded(stride, dilation, padding, groups, output_padding, kernel)
    layer = gn.ConvTranspose2D(4, 6, kernel, stride=stride, padding=padding, output_padding=output_padding,
                               groups=groups, dilation=dilation, rng=rng)
    weight, bias = layer.params["weight"].copy(), layer.params["bias"].copy()
    assert weight.shape == (4, 6 // groups) + layer.kernel_size
    x = rng.standard_normal((2, 4, height, width))
    run = backend.forward_backward(layer, x, rng.standard_normal)

    def reference(x_t, w_t, b_t):
        return F.conv_transpose2d(x_t, w_t, b_t, stride=stride, padding=padding, output_padding=output_padding,
                                  groups=groups, dilation=dilation)

    out, dx, (dw, db) = torch_forward_backward(reference, x, run.dy, [weight, bias])
    assert_matches(run.out, out)
    assert_matches(run.dx, dx)
    assert_matches(run.grads["weight"], dw)
    assert_matches(run.grads["bias"], db)
    assert run.out.shape[1:] == layer.output_shape(x.shape[1:])


def test_conv_transpose_forward_is_conv2d_input_gradient():
    """The adjoint: ConvTranspose2D(x) with weight W equals Conv2D's dL/d(input) for dy = x."""
    rng = np.random.default_rng(0)
    conv = gn.Conv2D(3, 5, 3, stride=2, padding=1, bias=False, rng=rng)
    up = gn.ConvTranspose2D(5, 3, 3, stride=2, padding=1, bias=False, rng=rng)
    up.params["weight"][...] = conv.params["weight"]
    images = rng.standard_normal((2, 3, 9, 9))
    y = conv.forward(images)
    np.testing.assert_allclose(up.forward(y), conv.backward(y), rtol=1e-13, atol=1e-13)


def test_conv_transpose_initialises_as_torch():
    torch.manual_seed(0)
    reference = torch.nn.ConvTranspose2d(4, 6, 3, groups=2)
    layer = gn.ConvTranspose2D(4, 6, 3, groups=2, rng=0)
    bound = float(reference.weight.detach().abs().max())
    assert layer.params["weight"].shape == tuple(reference.weight.shape)
    assert np.abs(layer.params["weight"]).max() <= 1 / np.sqrt(3 * 3 * 3) + 1e-12 and bound <= 1 / np.sqrt(27)


@pytest.mark.parametrize("kwargs, words", [
    (dict(stride=2, output_padding=2), "output_padding"),
    (dict(groups=4), "divisible by groups"),
    (dict(padding=-1), "padding"),
])
def test_conv_transpose_bad_arguments_are_named(kwargs, words):
    with pytest.raises(gn.GlassnetError, match=words):
        gn.ConvTranspose2D(4, 6, 3, **kwargs)


# -- pooling -------------------------------------------------------------------------------------------------
POOL_GRID = [  # kernel, stride, padding, dilation, ceil_mode, size: sizes where ceil_mode's last window is partial
    (kernel, stride, padding, dilation, ceil, size)
    for kernel, stride, padding, dilation, ceil, size in itertools.product(
        [2, 3, (3, 2)], [1, 2, 3], [0, 1], [1, 2], [False, True], [(7, 8), (6, 9)])
    if 2 * padding <= min(gn.MaxPool2D(kernel).kernel_size)
]


@pytest.mark.parametrize("kernel, stride, padding, dilation, ceil_mode, size", POOL_GRID)
def test_max_pool_ceil_mode_and_dilation_match_torch(backend, kernel, stride, padding, dilation, ceil_mode, size):
    rng = seeded("max", kernel, stride, padding, dilation, ceil_mode, size)
    pool = gn.MaxPool2D(kernel, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    x = rng.standard_normal((2, 3) + size)
    run = backend.forward_backward(pool, x, rng.standard_normal)
    out, dx, _ = torch_forward_backward(
        lambda t: F.max_pool2d(t, kernel, stride, padding, dilation, ceil_mode=ceil_mode), x, run.dy)
    assert_matches(run.out, out)
    assert_matches(run.dx, dx)
    assert run.out.shape[1:] == pool.output_shape(x.shape[1:])


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("kernel, stride, padding, dilation, ceil_mode, size",
                         [case for case in POOL_GRID if case[3] == 1])
def test_avg_pool_ceil_mode_and_count_include_pad_match_torch(backend, kernel, stride, padding, dilation, ceil_mode,
                                                              size, count_include_pad):
    rng = seeded("avg", kernel, stride, padding, ceil_mode, size, count_include_pad)
    pool = gn.AvgPool2D(kernel, stride=stride, padding=padding, ceil_mode=ceil_mode,
                        count_include_pad=count_include_pad)
    x = rng.standard_normal((2, 3) + size)
    run = backend.forward_backward(pool, x, rng.standard_normal)
    out, dx, _ = torch_forward_backward(
        lambda t: F.avg_pool2d(t, kernel, stride, padding, ceil_mode=ceil_mode, count_include_pad=count_include_pad),
        x, run.dy)
    assert_matches(run.out, out)
    assert_matches(run.dx, dx)


@pytest.mark.parametrize("pads", [(0, 1, 0, 1), (1, 0, 1, 1), (1, 1, 0, 1)])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_asymmetric_pool_pads_equal_torch_after_an_explicit_pad(backend, pads, kind):
    """Caffe-era pads (top, bottom, left, right): the same as padding first (-inf for max, 0 counted
    for avg) and pooling without padding."""
    rng = seeded(kind, pads)
    top, bottom, left, right = pads
    pool = (gn.MaxPool2D if kind == "max" else gn.AvgPool2D)(3, stride=2, padding=pads)
    x = rng.standard_normal((2, 2, 7, 8))
    run = backend.forward_backward(pool, x, rng.standard_normal)
    fill = -float("inf") if kind == "max" else 0.0
    function = F.max_pool2d if kind == "max" else F.avg_pool2d
    out, dx, _ = torch_forward_backward(lambda t: function(F.pad(t, (left, right, top, bottom), value=fill), 3, 2),
                                        x, run.dy)
    assert_matches(run.out, out)
    assert_matches(run.dx, dx)


def test_pool_padding_over_half_the_kernel_is_refused():
    with pytest.raises(gn.GlassnetError, match="half the kernel"):
        gn.MaxPool2D(2, padding=(0, 2, 0, 0))


# -- LRN -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size, alpha, beta, k", [(1, 1e-4, 0.75, 1.0), (2, 0.1, 0.75, 2.0), (3, 0.5, 0.5, 1.0),
                                                  (4, 1e-3, 0.9, 1.5), (5, 1e-4, 0.75, 1.0), (5, 2.0, 0.75, 1.0),
                                                  (9, 0.3, 1.2, 0.5)])
def test_lrn_matches_torch(backend, size, alpha, beta, k):
    rng = seeded("lrn", size, alpha)
    layer = gn.LRN(size, alpha=alpha, beta=beta, k=k)
    x = rng.standard_normal((2, 7, 4, 5)) * 2
    run = backend.forward_backward(layer, x, rng.standard_normal)
    out, dx, _ = torch_forward_backward(lambda t: F.local_response_norm(t, size, alpha, beta, k), x, run.dy)
    assert_matches(run.out, out)
    assert_matches(run.dx, dx)


def test_lrn_window_is_pytorchs():
    layer = gn.LRN(4)
    assert [layer.window(c, 7) for c in (0, 3, 6)] == [(0, 1), (1, 4), (4, 6)]


# -- padding, upsampling, shuffles ---------------------------------------------------------------------------
PADS = [1, (2, 1), (0, 2, 3, 1), (3, 0, 0, 2)]


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate"])
@pytest.mark.parametrize("padding", PADS)
def test_pad2d_matches_torch(backend, mode, padding):
    rng = seeded("pad", mode, padding)
    layer = gn.Pad2D(padding, mode=mode, value=1.5 if mode == "constant" else 0.0)
    top, bottom, left, right = layer.pads
    x = rng.standard_normal((2, 3, 5, 6))
    run = backend.forward_backward(layer, x, rng.standard_normal)
    kwargs = {"value": 1.5} if mode == "constant" else {}
    out, dx, _ = torch_forward_backward(lambda t: F.pad(t, (left, right, top, bottom), mode=mode, **kwargs), x, run.dy)
    assert_matches(run.out, out)
    assert_matches(run.dx, dx)
    assert run.out.shape[1:] == layer.output_shape(x.shape[1:])


def test_reflect_padding_wider_than_the_input_is_named():
    with pytest.raises(gn.GlassnetError, match="reflect padding must be smaller"):
        gn.Pad2D(4, mode="reflect").forward(np.zeros((1, 1, 4, 9)))


@pytest.mark.parametrize("mode, align_corners", [("nearest", False), ("bilinear", False), ("bilinear", True)])
@pytest.mark.parametrize("scale", [2, 3, (2, 3), 1])
def test_upsample_matches_torch(backend, mode, align_corners, scale):
    rng = seeded("up", mode, align_corners, scale)
    layer = gn.Upsample2D(scale, mode=mode, align_corners=align_corners)
    x = rng.standard_normal((2, 3, 4, 5))
    run = backend.forward_backward(layer, x, rng.standard_normal)
    factor = scale if isinstance(scale, int) else tuple(float(s) for s in scale)
    kwargs = {"align_corners": align_corners} if mode == "bilinear" else {}
    out, dx, _ = torch_forward_backward(lambda t: F.interpolate(t, scale_factor=factor, mode=mode, **kwargs), x, run.dy)
    assert_matches(run.out, out)
    assert_matches(run.dx, dx)


@pytest.mark.parametrize("r", [1, 2, 3])
def test_pixel_shuffle_matches_torch(backend, r):
    rng = seeded("pixel", r)
    x = rng.standard_normal((2, 2 * r * r, 3, 4))
    run = backend.forward_backward(gn.PixelShuffle(r), x, rng.standard_normal)
    out, dx, _ = torch_forward_backward(lambda t: F.pixel_shuffle(t, r), x, run.dy)
    assert_matches(run.out, out)
    assert_matches(run.dx, dx)


@pytest.mark.parametrize("groups", [1, 2, 3, 6])
def test_channel_shuffle_matches_torch(backend, groups):
    rng = seeded("shuffle", groups)
    x = rng.standard_normal((2, 6, 3, 2))
    run = backend.forward_backward(gn.ChannelShuffle(groups), x, rng.standard_normal)
    out, dx, _ = torch_forward_backward(torch.nn.ChannelShuffle(groups), x, run.dy)
    assert_matches(run.out, out)
    assert_matches(run.dx, dx)


@pytest.mark.parametrize("layer, shape, words", [
    (gn.PixelShuffle(2), (1, 6, 2, 2), "divisible by upscale_factor"),
    (gn.ChannelShuffle(4), (1, 6, 2, 2), "divisible by groups"),
    (gn.Upsample2D(2), (1, 6, 2), "4-dimensional"),
])
def test_shape_layers_name_bad_input(layer, shape, words):
    with pytest.raises(gn.GlassnetError, match=words):
        layer.forward(np.zeros(shape))
