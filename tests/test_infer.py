"""Inference (``Model.infer`` through ``Graph.infer``): the same numbers as ``forward``, bit for bit.

A monotone activation (ReLU, ReLU6, LeakyReLU) whose one reader is a max pool runs after the pool there,
in place on the pool's output: max(f(a), f(b)) = f(max(a, b)) for a non-decreasing f (written out for
ReLU below). Where another node or the model's output also reads the activation, it stays where it is.
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
    moved = model.graph.activations_before_max_pools()
    assert moved == {"simple": {1}, "lenet": {1, 4}, "colour": {1, 4, 7}}[arch]
    x = np.random.default_rng(2).standard_normal((batch,) + shape).astype(dtype)
    kept = x.copy()
    for mode in ("train", "eval"):
        getattr(model, mode)()
        np.testing.assert_array_equal(model.infer(x), model.forward(x))
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
    assert model.graph.activations_before_max_pools() == (set() if second_reader else {1})
    x = np.random.default_rng(3).standard_normal((4, 2, 8, 8)) * 5     # values past ReLU6's 6 too
    np.testing.assert_array_equal(model.infer(x), model.forward(x))


def test_an_activation_that_is_a_model_output_stays_before_the_pool():
    inputs = gn.Input((1, 6, 6))
    a = gn.ReLU()(inputs)
    model = gn.Model(inputs, [a, gn.MaxPool2D(2)(a)])
    assert model.graph.activations_before_max_pools() == set()
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
