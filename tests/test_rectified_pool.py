"""A ReLU whose one reader is a max pool, applied by the pool in training (``MaxPool2D.forward_rectified``,
``Graph.forward``): max pool(relu(x)) computed as relu(max pool(x)).

By hand: for a window with maximum m, relu(max) = max(relu) (ReLU never decreases). Backward: when m > 0,
relu(x) peaks at exactly the taps where x = m, so PyTorch's first winner is the same tap, and relu' = 1
there; when m <= 0, relu(x) is 0 at every tap, the first tap takes dy and relu' = 0 there (x <= 0), so
the window sends nothing back. The tests below check this against PyTorch float64, bit for bit against
the unfused path, and that the ReLU's mask (``fit``'s dead-unit figures) is unchanged.
"""
import numpy as np
import pytest
import torch

import glassnet as gn
from glassnet.models import presets
from glassnet.nn.layers.activations import PartCaches, PreActivation
from reference import assert_matches


def test_relu_then_max_equals_max_then_relu_and_its_gradient_by_hand():
    window = np.array([-3.0, 0.0, -1.0, 0.0])          # m = 0: relu is 0 everywhere, nothing flows back
    assert np.max(np.maximum(window, 0)) == np.maximum(np.max(window), 0) == 0
    window = np.array([-3.0, 2.0, 2.0, 1.0])           # m = 2 > 0: the first tap equal to 2 (index 1) wins
    assert np.argmax(np.maximum(window, 0)) == np.argmax(window) == 1


def conv_relu_pool(pool, size, conv):
    inputs = gn.Input((2, size, size))
    h = gn.ReLU()(gn.Conv2D(2, 3, rng=0, **conv)(inputs))
    pooled = pool(h)
    return gn.Model(inputs, gn.Dense(int(np.prod(pooled.shape)), 4, rng=1)(gn.Flatten()(pooled)))


def awkward_batch(rng, n, size):
    """Inputs whose convolution gives ties, exact zeros and windows with no positive value."""
    x = np.round(rng.standard_normal((n, 2, size, size)) * 2) / 2
    x[0] = 0.0                                        # every pre-activation of sample 0 equals the bias
    x[1, :, :4, :4] = -5.0
    return x


POOLS = {"2x2": lambda: gn.MaxPool2D(2), "3x3-s2-p1": lambda: gn.MaxPool2D(3, stride=2, padding=1),
         "ceil": lambda: gn.MaxPool2D(2, ceil_mode=True), "3x3-s1": lambda: gn.MaxPool2D(3, stride=1),
         "dilated": lambda: gn.MaxPool2D(2, dilation=2), "2x3": lambda: gn.MaxPool2D((2, 3))}
CONVS = {"3x3-p1": {"kernel_size": 3, "padding": 1}, "3x3-s2": {"kernel_size": 3, "stride": 2, "padding": 1},
         "3x3-d2": {"kernel_size": 3, "dilation": 2, "padding": 2}}


@pytest.mark.parametrize("pool", POOLS, ids=list(POOLS))
@pytest.mark.parametrize("size", [9, 12])
@pytest.mark.parametrize("conv", CONVS, ids=list(CONVS))
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_a_pool_applying_the_relu_matches_pytorch(pool, size, conv, mode):
    model = conv_relu_pool(POOLS[pool](), size, CONVS[conv])
    getattr(model, mode)()
    assert model.graph.rectified_max_pools() == {2: 1, 1: None}
    torch_model = gn.to_torch(model)
    getattr(torch_model, mode)()
    rng = np.random.default_rng(4)
    x, dy = awkward_batch(rng, 5, size), rng.standard_normal((5, 4))
    out = model.forward(x)
    assert isinstance(model.layers[1]._cache, PreActivation)        # the pool applied the ReLU
    dx = model.backward(dy)
    x_t = torch.tensor(x, requires_grad=True)
    out_t = torch_model(x_t)
    out_t.backward(torch.tensor(dy))
    assert_matches(out, out_t)
    assert_matches(dx, x_t.grad)
    conv_t, dense_t = [m for m in torch_model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert_matches(model.layers[0].grads["weight"], conv_t.weight.grad)
    assert_matches(model.layers[0].grads["bias"], conv_t.bias.grad)
    dense = model.layers[-1]
    assert_matches(dense.grads["bias"], dense_t.bias.grad)
    assert_matches(np.reshape(dense.grads["weight"], dense_t.weight.shape[::-1]).T
                   if dense.grads["weight"].shape != dense_t.weight.shape else dense.grads["weight"],
                   dense_t.weight.grad)
    with torch.no_grad():
        pre_activation = conv_t(torch.tensor(x))
    np.testing.assert_array_equal(model.layers[1].positive_mask(), (pre_activation > 0).numpy())


def run_step(model, x, dy):
    out = model.forward(x)
    dx = model.backward(dy)
    grads = [np.array(layer.grads[key]) for _, layer, key in model.named_parameters()]
    masks = [layer.positive_mask() for layer in model.layers if isinstance(layer, gn.ReLU)]
    return [out, dx] + grads + masks


@pytest.mark.parametrize("arch, batch", [("lenet", 7), ("lenet", 64), ("simple", 100), ("colour", 50)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_same_bits_as_the_layers_one_by_one(monkeypatch, arch, batch, dtype):
    monkeypatch.setenv("GLASSNET_THREADS", "2")         # b64 and up: the batch split, its masks joined
    shape = (3, 32, 32) if arch == "colour" else (1, 28, 28)
    x = np.random.default_rng(5).standard_normal((batch,) + shape).astype(dtype)
    dy = np.random.default_rng(6).standard_normal((batch, 10)).astype(dtype)
    fused = presets.build(arch, shape, 10, seed=2, dtype=dtype)
    plain = presets.build(arch, shape, 10, seed=2, dtype=dtype)
    monkeypatch.setattr(plain.graph, "rectified_max_pools", lambda: {})
    assert len(fused.graph.rectified_max_pools()) == {"lenet": 4, "simple": 2, "colour": 6}[arch]
    first_relu = fused.layers[1]
    for _ in range(2):                                  # a second step after the first: nothing stale
        ours, theirs = run_step(fused, x, dy), run_step(plain, x, dy)
        kept = first_relu._cache                        # its input (in parts when the batch was split)
        assert all(isinstance(part, PreActivation) for part in (kept if isinstance(kept, PartCaches) else [kept]))
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(a, b)


def test_a_relu_read_by_another_node_or_traced_runs_on_its_own():
    inputs = gn.Input((2, 8, 8))
    a = gn.ReLU()(gn.Conv2D(2, 3, 3, padding=1, rng=0)(inputs))
    out = gn.Add()([gn.Dense(48, 3, rng=1)(gn.Flatten()(gn.MaxPool2D(2)(a))),
                    gn.Dense(3, 3, rng=2)(gn.GlobalAvgPool2D()(a))])
    model = gn.Model(inputs, out)
    assert model.graph.rectified_max_pools() == {}
    chain = presets.build("simple", (1, 28, 28), 10, seed=0)
    x = np.random.default_rng(7).standard_normal((3, 1, 28, 28))
    steps = gn.trace(chain, x, np.array([1, 2, 3]), gn.SoftmaxCrossEntropy()).steps
    assert steps[1].layer == "ReLU()"
    np.testing.assert_array_equal(steps[1].output, np.maximum(steps[0].output, 0))
    np.testing.assert_array_equal(steps[1].grad_input, steps[1].grad_output * (steps[0].output > 0))

def test_fit_reports_the_same_dead_units(monkeypatch):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((96, 1, 28, 28)) - 0.5
    y = rng.integers(0, 10, 96)
    histories = []
    for fused in (True, False):
        model = presets.build("lenet", (1, 28, 28), 10, seed=3)
        if not fused:
            monkeypatch.setattr(model.graph, "rectified_max_pools", lambda: {})
        histories.append(model.fit(x, y, epochs=2, batch_size=48, verbose=False, seed=0))
    assert histories[0]["dead_relu"].keys() == {"1", "4", "8"}
    assert histories[0]["dead_relu"] == histories[1]["dead_relu"]
    assert histories[0]["loss"] == histories[1]["loss"]
