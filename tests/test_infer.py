"""Inference (``Model.infer`` through ``Graph.infer``): the same numbers as ``forward``.

A monotone activation (ReLU, ReLU6, LeakyReLU) whose one reader is a max pool runs after the pool there,
in place on the pool's output: max(f(a), f(b)) = f(max(a, b)) for a non-decreasing f (written out for
ReLU below), bit for bit. Where another node or the model's output also reads the activation, it stays
where it is. A first convolution before that pool runs with it in one step (``conv_pool.py``): the same
products, summed by the BLAS perhaps in another order, so equal up to the last bits.
"""
import numpy as np
import pytest

import glassnet as gn
from glassnet.models import presets
from glassnet.nn.layers import ReLU6


def test_relu_commutes_with_max_by_hand():
    a = np.array([-3.0, -1.0, 0.0, 2.0, -0.5])
    b = np.array([-2.0, 1.0, -4.0, 5.0, -0.25])
    np.testing.assert_array_equal(np.maximum(np.maximum(a, 0), np.maximum(b, 0)),
                                  np.maximum(np.maximum(a, b), 0))       # 0, 1, 0, 5, 0 both ways


@pytest.mark.parametrize("arch, shape", [("simple", (1, 28, 28)), ("lenet", (1, 28, 28)), ("colour", (3, 32, 32))])
@pytest.mark.parametrize("batch", [3, 130])            # one pass, and the batch split over both cores
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_infer_equals_forward_with_the_activations_moved_behind_the_pools(monkeypatch, arch, shape, batch, dtype):
    monkeypatch.setenv("GLASSNET_THREADS", "2")
    model = presets.build(arch, shape, 10, seed=1, dtype=dtype)
    plans = model.graph.max_pool_plans()          # {pool node: (convolution node, activation node)}
    assert plans == {"simple": {2: (0, 1)}, "lenet": {2: (0, 1), 5: (3, 4)},
                     "colour": {2: (0, 1), 5: (3, 4), 8: (6, 7)}}[arch]
    x = np.random.default_rng(2).standard_normal((batch,) + shape).astype(dtype)
    kept = x.copy()
    for mode in ("train", "eval"):
        getattr(model, mode)()
        assert_same_up_to_summation_order(model.infer(x), model.forward(x))   # first conv with its pool
    np.testing.assert_array_equal(x, kept)                # the caller's batch is never written to


def small_graph(activation, second_reader):
    """conv -> activation -> max pool -> flatten -> dense, the activation also read by a global pool
    added to the output when ``second_reader``."""
    inputs = gn.Input((2, 8, 8))
    h = gn.Conv2D(2, 3, 3, padding=1, rng=0)(inputs)
    a = activation(h)
    pooled = gn.Flatten()(gn.MaxPool2D(2)(a))
    out = gn.Dense(48, 3, rng=1)(pooled)
    if second_reader:
        out = gn.Add()([out, gn.Dense(3, 3, rng=2)(gn.GlobalAvgPool2D()(a))])
    return gn.Model(inputs, out)


@pytest.mark.parametrize("activation", [gn.ReLU, ReLU6, lambda: gn.LeakyReLU(0.2)])
@pytest.mark.parametrize("second_reader", [False, True])
def test_an_activation_read_by_another_node_stays_before_the_pool(activation, second_reader):
    model = small_graph(lambda h: activation()(h), second_reader)
    assert model.graph.max_pool_plans() == ({} if second_reader else {2: (0, 1)})
    x = np.random.default_rng(3).standard_normal((4, 2, 8, 8)) * 5     # values past ReLU6's 6 too
    assert_same_up_to_summation_order(model.infer(x), model.forward(x))


def test_an_activation_that_is_a_model_output_stays_before_the_pool():
    inputs = gn.Input((1, 6, 6))
    a = gn.ReLU()(inputs)
    model = gn.Model(inputs, [a, gn.MaxPool2D(2)(a)])
    assert model.graph.max_pool_plans() == {}
    x = np.random.default_rng(4).standard_normal((2, 1, 6, 6))
    kept = x.copy()
    for ours, expected in zip(model.infer(x), model.forward(x)):
        np.testing.assert_array_equal(ours, expected)
    np.testing.assert_array_equal(x, kept)


def test_a_relu_on_the_models_input_before_a_pool_leaves_the_input_alone():
    model = gn.Sequential([gn.ReLU(), gn.MaxPool2D(2), gn.Flatten()])
    x = np.random.default_rng(5).standard_normal((2, 1, 4, 4))
    kept = x.copy()
    np.testing.assert_array_equal(model.infer(x), np.maximum(x, 0).reshape(2, 1, 2, 2, 2, 2).max(axis=(3, 5))
                                  .reshape(2, 4))
    np.testing.assert_array_equal(x, kept)


def test_layer_infer_keeps_nothing():
    layer = gn.ReLU()
    layer.forward(np.ones((2, 3)))
    layer.infer(np.ones((2, 3)))
    assert layer._cache is None
    with pytest.raises(gn.GlassnetError, match="backward called before forward"):
        layer.backward(np.ones((2, 3)))


def in_place_calls(monkeypatch):
    """Record the ``in_place`` flag of every ReLU.infer call."""
    calls = []
    original = gn.ReLU._value

    def spy(self, x, in_place):
        calls.append(in_place)
        return original(self, x, in_place)
    monkeypatch.setattr(gn.ReLU, "_value", spy)
    return calls


def test_an_activation_works_in_place_only_on_a_new_array_nothing_else_reads(monkeypatch):
    calls = in_place_calls(monkeypatch)
    x = np.random.default_rng(6).standard_normal((3, 2, 6, 6))
    kept = x.copy()
    chain = gn.Sequential([gn.Conv2D(2, 3, 3, padding=1, rng=0), gn.ReLU(), gn.Flatten(), gn.ReLU(),
                           gn.Dense(108, 4, rng=1), gn.ReLU()])
    np.testing.assert_array_equal(chain.infer(x), chain.forward(x))
    assert calls[:3] == [True, False, True]       # after Conv2D; after Flatten (a view); after Dense
    calls.clear()
    inputs = gn.Input((2, 6, 6))
    h = gn.Conv2D(2, 2, 3, padding=1, rng=0)(inputs)
    residual = gn.Model(inputs, gn.Add()([gn.ReLU()(h), h]))            # h is read twice
    np.testing.assert_array_equal(residual.infer(x), residual.forward(x))
    assert calls[0] is False
    calls.clear()
    on_input = gn.Sequential([gn.ReLU(), gn.Flatten()])
    np.testing.assert_array_equal(on_input.infer(x), np.maximum(x, 0).reshape(3, -1))
    assert calls[0] is False
    np.testing.assert_array_equal(x, kept)


def test_a_bias_commutes_with_max_by_hand():
    """Rounding is monotone, so max(a + b, c + b) = max(a, c) + b bit for bit: the bias may follow the pool."""
    a = np.array([0.1, -2.5, 1e-17, 3.0], dtype=np.float32)
    c = np.array([0.2, -2.4, 2e-17, 3.0000002], dtype=np.float32)
    b = np.float32(1.0)
    np.testing.assert_array_equal(np.maximum(a + b, c + b), np.maximum(a, c) + b)   # 1.2, -1.4, 1, 4


def test_columns_by_window_place_are_im2col_by_samples_columns_reordered():
    from glassnet.nn.layers.conv_pool import columns_by_window_place
    from glassnet.nn.layers.windows import im2col_by_sample
    x = np.random.default_rng(7).standard_normal((2, 3, 11, 10))
    kernel, stride, dilation, (OH, OW) = (3, 2), (1, 2), (2, 1), (7, 5)
    ours = columns_by_window_place(x, kernel, stride, dilation, (2, 2), (3, 2))     # rows 0..5, columns 0..3
    columns = im2col_by_sample(x, kernel, stride, (OH, OW), dilation).reshape(2, 18, OH, OW)
    for a in range(2):
        for b in range(2):
            for r in range(3):
                for c in range(2):
                    position = ((a * 2 + b) * 3 + r) * 2 + c
                    np.testing.assert_array_equal(ours[:, :, position], columns[:, :, r * 2 + a, c * 2 + b])
    with_ones = columns_by_window_place(x, kernel, stride, dilation, (2, 2), (3, 2), ones=True)
    assert with_ones.shape == (2, 19, 24)
    np.testing.assert_array_equal(with_ones[:, :18], ours)
    np.testing.assert_array_equal(with_ones[:, 18], np.ones((2, 24)))


def test_a_relu_before_the_pool_comes_into_the_convolutions_step(monkeypatch):
    """The ReLU between a first convolution and its pool is the pool's starting value 0 there: it does not
    run by itself, and the numbers are forward's (bias inside the product: up to summation order)."""
    calls = fused_calls(monkeypatch)
    model = gn.Sequential([gn.Conv2D(1, 4, 3, rng=0), gn.ReLU(), gn.MaxPool2D(2)])
    monkeypatch.setattr(gn.ReLU, "infer", lambda *args, **kwargs: pytest.fail("the ReLU ran by itself"))
    x = np.random.default_rng(3).standard_normal((5, 1, 10, 10))
    expected = model.forward(x)
    assert (expected == 0).any() and (expected > 0).any()
    assert_same_up_to_summation_order(model.infer(x), expected)
    assert calls == [True]


def assert_same_up_to_summation_order(ours, expected):
    """A convolution run with its pool sums the same products, perhaps in another order (the BLAS treats a
    column by where it sits in the matrix): each value within 32 units in the last place of the largest.
    A wrong column, tap or bias would be off by the size of a product, 1e6 times more."""
    scale = np.abs(expected).max()
    np.testing.assert_allclose(ours, expected, rtol=0, atol=32 * np.finfo(expected.dtype).eps * scale)


def fused_calls(monkeypatch):
    """Record whether each conv_then_max_pool call ran in one step (True) or handed back None."""
    import glassnet.models.graph as graph_module
    calls, original = [], graph_module.conv_then_max_pool

    def spy(conv, pool, x, rectify=False):
        out = original(conv, pool, x, rectify)
        calls.append(out is not None)
        return out
    monkeypatch.setattr(graph_module, "conv_then_max_pool", spy)
    return calls


POOLS = [  # (pool, whether its windows tile the convolution's output; None: only where the size divides)
    (lambda: gn.MaxPool2D(2), True), (lambda: gn.MaxPool2D(3), True), (lambda: gn.MaxPool2D((2, 3)), True),
    (lambda: gn.MaxPool2D(1), True), (lambda: gn.MaxPool2D(2, ceil_mode=True), None),
    (lambda: gn.MaxPool2D(3, stride=2), False), (lambda: gn.MaxPool2D(2, padding=1), False),
    (lambda: gn.MaxPool2D(2, dilation=2, stride=2), False)]
CONVS = [lambda: gn.Conv2D(1, 5, 5, rng=0), lambda: gn.Conv2D(3, 4, 3, padding=1, bias=False, rng=1),
         lambda: gn.Conv2D(2, 3, 3, stride=2, padding=2, dilation=2, rng=2), lambda: gn.Conv2D(1, 6, (2, 4), rng=3)]


@pytest.mark.parametrize("pool, tiles", POOLS)
@pytest.mark.parametrize("conv", CONVS)
@pytest.mark.parametrize("activation", [None, gn.ReLU, lambda: gn.LeakyReLU(0.1)])
@pytest.mark.parametrize("size", [12, 13, 16, 18])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_convolution_and_its_max_pool_in_one_step_give_forwards_bits(monkeypatch, pool, tiles, conv, activation,
                                                                        size, dtype):
    calls = fused_calls(monkeypatch)
    first = conv()
    layers = [first] + ([activation()] if activation else []) + [pool(), gn.Flatten()]
    model = gn.Sequential(layers).astype(dtype)
    x = np.random.default_rng(8).standard_normal((3, first.in_channels, size, size)).astype(dtype)
    kept = x.copy()
    expected = model.forward(x)
    assert_same_up_to_summation_order(model.infer(x), expected)
    np.testing.assert_array_equal(x, kept)
    conv_hw = first.output_shape((first.in_channels, size, size))[1:]
    if tiles is None:
        tiles = all(s % k == 0 for s, k in zip(conv_hw, layers[-2].kernel_size))
    assert calls == [tiles]


COLUMN_CONVS = [lambda: gn.Conv2D(8, 4, 3, padding=1, rng=0), lambda: gn.Conv2D(6, 5, (3, 2), stride=2, rng=1),
                lambda: gn.Conv2D(8, 6, 3, padding=2, dilation=2, groups=2, bias=False, rng=2)]
ANY_POOLS = [lambda: gn.MaxPool2D(2), lambda: gn.MaxPool2D(3, stride=2, padding=1),
             lambda: gn.MaxPool2D(2, ceil_mode=True), lambda: gn.MaxPool2D((2, 3), stride=1, dilation=(2, 1))]


@pytest.mark.parametrize("conv", COLUMN_CONVS)
@pytest.mark.parametrize("pool", ANY_POOLS)
@pytest.mark.parametrize("activation", [None, ReLU6])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_convolution_through_columns_pools_its_product_as_it_lies_with_forwards_bits(monkeypatch, conv, pool,
                                                                                       activation, dtype):
    """More than 32 rows of columns (C*kh*kw): one product (F, N*OH*OW), pooled before it is reordered;
    any max pool (padding, overlap, dilation, ceil mode). The product is forward's, so the same bits."""
    calls = fused_calls(monkeypatch)
    model = gn.Sequential([conv()] + ([activation()] if activation else []) + [pool()]).astype(dtype)
    x = (np.random.default_rng(9).standard_normal((3, model.layers[0].in_channels, 11, 12)) * 4).astype(dtype)
    kept = x.copy()
    np.testing.assert_array_equal(model.infer(x), model.forward(x))
    np.testing.assert_array_equal(x, kept)
    assert calls == [True]


def test_a_convolution_read_twice_or_too_large_for_columns_runs_by_itself(monkeypatch):
    from glassnet.nn.layers import conv as conv_module
    calls = fused_calls(monkeypatch)
    x = np.random.default_rng(9).standard_normal((2, 8, 8, 8))
    monkeypatch.setattr(conv_module, "BLOCKED_COLUMN_BYTES", 1024)           # the columns made in blocks
    wide = gn.Sequential([gn.Conv2D(8, 4, 3, padding=1, rng=0), gn.ReLU(), gn.MaxPool2D(2)])   # 72 rows
    np.testing.assert_array_equal(wide.infer(x), wide.forward(x))
    assert calls == [False]
    inputs = gn.Input((8, 8, 8))
    h = gn.Conv2D(8, 2, 1, rng=1)(inputs)
    twice = gn.Model(inputs, gn.Add()([gn.MaxPool2D(2)(h), gn.MaxPool2D(2)(h)]))
    assert twice.graph.max_pool_plans() == {}
    np.testing.assert_array_equal(twice.infer(x), twice.forward(x))
