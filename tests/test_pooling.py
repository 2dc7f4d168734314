"""MaxPool2D and AvgPool2D against PyTorch float64 and plain loops, incl. overlap, padding and ties,
on every array library of tests/backends.py."""
import itertools

import numpy as np
import pytest
import torch.nn.functional as F

import glassnet as gn
from reference import assert_matches, loop_maxpool2d_backward, torch_forward_backward

POOL_KERNELS = [2, 3, (2, 3)]
POOL_STRIDES = [None, 1, 2, (1, 2)]
POOL_PADDINGS = [0, 1]


def pool_grid():
    configs = []
    for index, (kind, kernel, stride, padding) in enumerate(
            itertools.product(["max", "avg"], POOL_KERNELS, POOL_STRIDES, POOL_PADDINGS)):
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        if 2 * padding > min(kh, kw):
            continue
        configs.append((kind, kernel, stride, padding, 1 + index % 3, 1 + index % 2, 6 + index % 3, 7 + index % 2))
    return configs


GRID = pool_grid()
LAYERS = {"max": gn.MaxPool2D, "avg": gn.AvgPool2D}


def torch_pool(kind, kernel, stride, padding):
    def run(x_t):
        if kind == "max":
            return F.max_pool2d(x_t, kernel, stride=stride, padding=padding)
        return F.avg_pool2d(x_t, kernel, stride=stride, padding=padding)  # count_include_pad=True
    return run


def test_grid_is_large_enough():
    assert len(GRID) >= 20
    assert any(stride == 1 for _, _, stride, *_ in GRID)  # overlapping windows
    assert any(padding > 0 for _, _, _, padding, *_ in GRID)


@pytest.mark.parametrize("kind, kernel, stride, padding, batch, channels, height, width", GRID)
def test_pool_matches_torch(backend, kind, kernel, stride, padding, batch, channels, height, width):
    rng = np.random.default_rng(len(GRID) + batch * 100 + height)
    layer = LAYERS[kind](kernel, stride=stride, padding=padding)
    x = rng.standard_normal((batch, channels, height, width))
    run = backend.forward_backward(layer, x, rng.standard_normal)
    ref_out, ref_dx, _ = torch_forward_backward(torch_pool(kind, kernel, stride, padding), x, run.dy)
    assert_matches(run.out, ref_out)
    assert_matches(run.dx, ref_dx)
    assert run.out.shape[1:] == layer.output_shape(x.shape[1:])


@pytest.mark.parametrize("kernel, stride, padding", [(2, None, 0), (3, 1, 0), (3, 1, 1), (2, 1, 1), ((2, 3), (1, 2), 1)])
def test_maxpool_ties_route_like_torch(backend, kernel, stride, padding):
    # few distinct values: most windows hold several equal maxima
    rng = np.random.default_rng(11)
    x = rng.integers(0, 3, size=(2, 3, 7, 6)).astype(np.float64)
    layer = gn.MaxPool2D(kernel, stride=stride, padding=padding)
    run = backend.forward_backward(layer, x, rng.standard_normal)
    dy, dx = run.dy, run.dx
    ref_out, ref_dx, _ = torch_forward_backward(torch_pool("max", kernel, stride, padding), x, dy)
    assert_matches(run.out, ref_out)
    assert_matches(dx, ref_dx)
    pair = lambda v: (v, v) if isinstance(v, int) else v
    expected = loop_maxpool2d_backward(x, dy, pair(kernel), pair(stride if stride is not None else kernel),
                                       pair(padding))
    assert_matches(dx, expected)


def test_overlapping_maxpool_accumulates_gradient_on_a_shared_maximum():
    # one big value in the middle wins all 4 overlapping 2x2 windows of a 3x3 image
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 5.0
    layer = gn.MaxPool2D(2, stride=1)
    assert layer.forward(x).tolist() == [[[[5.0, 5.0], [5.0, 5.0]]]]
    dx = layer.backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    expected = np.zeros((1, 1, 3, 3))
    expected[0, 0, 1, 1] = 1.0 + 2.0 + 3.0 + 4.0
    np.testing.assert_array_equal(dx, expected)


def test_stride_defaults_to_kernel():
    assert gn.MaxPool2D(3).stride == (3, 3)
    assert gn.AvgPool2D((2, 3)).stride == (2, 3)


@pytest.mark.parametrize("kernel, stride, padding, size", [
    (2, None, 0, (8, 6)), (2, None, 0, (7, 9)), (2, None, 1, (6, 6)), ((2, 3), None, 1, (7, 8)), (3, 3, 1, (9, 7)),
    (2, 3, 0, (8, 8))])
def test_training_and_evaluation_route_max_pool_gradients_alike(kernel, stride, padding, size):
    """In training, windows that do not overlap are pooled from copies of each tap's view (NumPy); in
    evaluation from the strided views themselves: the same outputs and gradients bit for bit, ties
    (few distinct values) and windows that leave pixels out (odd sizes, stride above the kernel) included,
    and both as PyTorch's."""
    rng = np.random.default_rng(5)
    x = rng.integers(0, 3, size=(2, 3) + size).astype(np.float64)
    training, evaluation = gn.MaxPool2D(kernel, stride=stride, padding=padding), \
        gn.MaxPool2D(kernel, stride=stride, padding=padding).eval()
    out = training.forward(x)
    dy = rng.standard_normal(out.shape)
    dx = training.backward(dy)
    np.testing.assert_array_equal(evaluation.forward(x), out)
    np.testing.assert_array_equal(evaluation.backward(dy), dx)
    ref_out, ref_dx, _ = torch_forward_backward(torch_pool("max", kernel, stride, padding), x, dy)
    assert_matches(out, ref_out)
    assert_matches(dx, ref_dx)
