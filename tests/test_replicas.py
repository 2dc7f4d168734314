"""A batch cut into parts over threads (replicas.py) computes what one pass computes: float64 against
the one-thread pass (1e-12) and PyTorch (1e-10), float32 against the float64 reference to float32
precision, and the ReLU masks fit reads afterwards."""
import tracemalloc
import weakref

import numpy as np
import pytest
import torch

import glassnet as gn
from glassnet.training.replicas import BatchSplit, GradientFold, parts_for
from reference import assert_matches


def network(dtype=np.float64):
    return gn.Sequential([
        gn.Conv2D(2, 5, 3, padding=1, rng=0), gn.ReLU(), gn.MaxPool2D(2),
        gn.Conv2D(5, 4, (2, 3), stride=(1, 2), rng=1), gn.LeakyReLU(0.1), gn.AvgPool2D(2, stride=1),
        gn.Flatten(), gn.Dense(4 * 3 * 1, 7, rng=2), gn.Tanh(), gn.Dense(7, 3, rng=3),
    ], dtype=dtype)


def one_step(model, x, y):
    loss = gn.SoftmaxCrossEntropy()
    value = loss.forward(model.forward(x), y)
    dx = model.backward(loss.backward())
    return value, dx, {name: grad.copy() for name, grad in model.gradients().items()}


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    return rng.standard_normal((150, 2, 10, 10)), rng.integers(0, 3, 150)


def test_the_batch_is_cut_when_it_is_large_and_every_layer_is_per_sample(monkeypatch, batch):
    monkeypatch.setenv("GLASSNET_THREADS", "2")
    x, _ = batch
    assert parts_for(network().layers, x[:128]) == 2
    assert parts_for(network().layers, x[:47]) == 1                      # under 24 samples per part
    assert parts_for(network().layers, x[:48]) == 2
    assert parts_for(network().layers, x) == 3                           # over 64 a part: more parts than
    assert parts_for(network().layers, np.concatenate([x, x])) == 5      # threads, each thread takes the next
    with_bn = gn.Sequential([gn.Conv2D(2, 2, 3, rng=0), gn.BatchNorm2D(2), gn.Dropout(0.5, rng=0)])
    assert parts_for(with_bn.layers, x) == 2             # Dropout's masks drawn for the batch, then split
    assert parts_for(with_bn.eval().layers, x) == 3      # evaluation: running statistics, the identity
    only_bn = gn.Sequential([gn.Conv2D(2, 2, 3, rng=0), gn.BatchNorm2D(2)])
    assert parts_for(only_bn.layers, x) == 2             # batch statistics summed over parts side by side
    assert parts_for(only_bn.layers, np.zeros((8, 2, 224, 224))) == 2   # large samples: one part a thread
    only_bn[1].group_sum = lambda arrays: arrays         # (MPI's ranks share them: not split then)
    assert parts_for(only_bn.layers, x) == 1
    large = np.zeros((2, 3, 200, 200))                   # 120,000 values a sample: a part of one is worth it
    assert parts_for(network().layers, large) == 2
    assert parts_for(network().layers, large[:1]) == 1
    assert parts_for(network().layers, np.zeros((8, 3, 64, 64))) == 1      # 12,288 values: parts of 9 at least
    assert parts_for(network().layers, np.zeros((18, 3, 64, 64))) == 2
    monkeypatch.setattr("glassnet.training.replicas.MAX_SPLIT_WEIGHT_BYTES", 7 * 12 * 8 - 1)   # the first Dense
    assert parts_for(network().layers, x) == 1                           # training: a part's copy of its gradient
    assert parts_for(network().layers, x, backward=False) == 3           # inference: no gradients
    monkeypatch.setenv("GLASSNET_THREADS", "1")
    assert parts_for(network().layers, x) == 1


def test_parts_over_threads_equal_one_pass_and_pytorch(monkeypatch, batch):
    x, y = batch
    monkeypatch.setenv("GLASSNET_THREADS", "1")
    alone = network()
    value_1, dx_1, grads_1 = one_step(alone, x, y)
    monkeypatch.setenv("GLASSNET_THREADS", "2")
    split = network()
    value_2, dx_2, grads_2 = one_step(split, x, y)
    assert value_2 == pytest.approx(value_1, rel=1e-12)
    assert_matches(dx_2, dx_1, rtol=1e-12)
    for name, grad in grads_1.items():
        assert_matches(grads_2[name], grad, rtol=1e-12)
    twin = gn.to_torch(network())
    x_t = torch.tensor(x, requires_grad=True)
    torch.nn.functional.cross_entropy(twin(x_t), torch.tensor(y)).backward()
    assert_matches(dx_2, x_t.grad)
    assert_matches(grads_2["0.weight"], twin[0].weight.grad)
    # fit reads the ReLU's mask after a forward pass: the whole batch's, gathered from the parts
    np.testing.assert_array_equal(split[1].positive_mask(), alone[1].positive_mask())


def test_float32_parts_agree_with_the_float64_reference_to_float32_precision(monkeypatch, batch):
    x, y = batch
    monkeypatch.setenv("GLASSNET_THREADS", "2")
    value_32, dx_32, grads_32 = one_step(network(np.float32), x.astype(np.float32), y)
    value_64, dx_64, grads_64 = one_step(network(np.float64), x, y)
    assert dx_32.dtype == np.float32 and all(g.dtype == np.float32 for g in grads_32.values())
    assert value_32 == pytest.approx(value_64, rel=1e-5)
    assert_matches(dx_32, dx_64, rtol=2e-4)
    for name, grad in grads_64.items():
        assert_matches(grads_32[name], grad, rtol=2e-4)


def test_a_thread_error_reaches_the_caller(monkeypatch, batch):
    monkeypatch.setenv("GLASSNET_THREADS", "2")
    x, _ = batch
    model = network()
    split = BatchSplit(model.graph, x, 2)
    with pytest.raises(gn.GlassnetError, match="upstream gradient"):
        split.backward(np.zeros((150, 4)), input_grad=True)


def graph_network():
    """A fan-out, a shared convolution, a concatenation and a gate: every kind of node the split must run."""
    x = gn.Input((2, 10, 10))
    shared = gn.Conv2D(2, 2, 3, padding=1, rng=4)
    a = gn.ReLU()(shared(x))
    b = shared(a)
    joined = gn.Concatenate()([gn.Add()([a, b]), gn.Multiply()([a, x])])
    pooled = gn.Concatenate()([gn.GlobalAvgPool2D()(joined), gn.GlobalMaxPool2D()(joined)])
    return gn.Model(x, gn.Dense(8, 3, rng=5)(pooled))


def test_a_graph_model_split_over_threads_computes_what_one_pass_computes(monkeypatch, batch):
    x, y = batch
    monkeypatch.setenv("GLASSNET_THREADS", "1")
    whole = one_step(graph_network(), x, y)
    monkeypatch.setenv("GLASSNET_THREADS", "2")
    model = graph_network()
    assert parts_for(model.layers, x) == 3            # 150 samples: three parts of 50 over the two threads
    loss = gn.SoftmaxCrossEntropy()
    value = loss.forward(model.forward(x), y)
    assert isinstance(model._pass, BatchSplit)
    dx = model.backward(loss.backward())
    assert abs(value - whole[0]) <= 1e-12 * abs(whole[0])
    np.testing.assert_allclose(dx, whole[1], rtol=1e-12, atol=1e-15)
    for name, grad in model.gradients().items():
        np.testing.assert_allclose(grad, whole[2][name], rtol=1e-12, atol=1e-15, err_msg=name)


@pytest.mark.parametrize("batch", [5, 200])            # one pass, and the batch split over both cores
def test_infer_gives_forwards_outputs_and_keeps_nothing_for_backward(batch, monkeypatch):
    monkeypatch.setenv("GLASSNET_THREADS", "2")
    model = network()
    x = np.random.default_rng(4).standard_normal((batch, 2, 10, 12))
    expected = model.forward(x)
    np.testing.assert_array_equal(model.infer(x), expected)
    assert all(getattr(layer, "_cache", None) is None for layer in model.layers)
    with pytest.raises(gn.GlassnetError, match="called before forward"):
        model.backward(np.ones_like(expected))
    graph = gn.presets.build("resnet_mini", (1, 12, 12), 3, seed=1)
    images = np.random.default_rng(5).standard_normal((batch, 1, 12, 12))
    # its BatchNorm folded into the convolution before it (conv_norm.py): equal up to rounding
    np.testing.assert_allclose(graph.eval().infer(images), graph.forward(images), rtol=1e-13, atol=1e-15)


def every_per_sample_layer():
    """One of each layer the split now runs (activations, padding, resampling, shuffles, LRN, a transposed
    convolution, BatchNorm and Dropout in evaluation), as a chain whose samples are 3x40x40 (4,800 values)."""
    from glassnet.nn.layers import (ELU, GELU, LRN, SELU, ChannelShuffle, ConvTranspose2D, Hardsigmoid, Hardswish,
                                    LogSoftmax, Pad2D, PixelShuffle, PReLU, ReLU6, Rescaling, Reshape, SiLU,
                                    Softplus, Softsign, Upsample2D)
    return gn.Sequential([
        Rescaling(0.5, 0.1), gn.Conv2D(3, 8, 3, rng=0), gn.BatchNorm2D(8), ReLU6(), Pad2D(1, mode="reflect"),
        ChannelShuffle(2), LRN(3), ELU(), gn.Conv2D(8, 8, 3, stride=2, groups=8, rng=1), SELU(), PixelShuffle(2),
        GELU(), ConvTranspose2D(2, 4, 2, stride=2, rng=2), SiLU(), gn.MaxPool2D(4), Hardswish(),
        Upsample2D(2), Hardsigmoid(), gn.AvgPool2D(4), PReLU(4), Softplus(), gn.Dropout(0.3, rng=3), Softsign(),
        Reshape((-1,)), gn.Dense(4 * 9 * 9, 5, rng=4), LogSoftmax(),
    ]).eval()


def test_every_per_sample_layer_split_computes_what_one_pass_computes(monkeypatch):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((100, 3, 40, 40))
    model = every_per_sample_layer()
    norm = model[2]
    norm.buffers["running_mean"], norm.buffers["running_var"] = rng.standard_normal(8), rng.uniform(0.5, 2, 8)
    dy = rng.standard_normal((100, 5))
    monkeypatch.setenv("GLASSNET_THREADS", "1")
    expected_infer = model.infer(x)
    expected = model.forward(x)
    expected_dx = model.backward(dy)
    expected_grads = {name: grad.copy() for name, grad in model.gradients().items()}
    monkeypatch.setenv("GLASSNET_THREADS", "2")
    assert parts_for(model.layers, x) == 2
    np.testing.assert_allclose(model.infer(x), expected_infer, rtol=1e-12, atol=1e-14)
    out = model.forward(x)
    assert isinstance(model._pass, BatchSplit)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(model.backward(dy), expected_dx, rtol=1e-12, atol=1e-14)
    for name, grad in model.gradients().items():
        np.testing.assert_allclose(grad, expected_grads[name], rtol=1e-12, atol=1e-14, err_msg=name)


def resnet_mini_split_equals_one_pass(monkeypatch, x, y, seed):
    """resnet_mini in training (BatchNorm) on x, one pass and split over two threads: the same loss, dL/dx,
    gradients and running statistics (float64, 1e-12) -> (dL/dx of the split, [(BatchNorm alone, split)])."""
    results = {}
    for threads in ("1", "2"):
        monkeypatch.setenv("GLASSNET_THREADS", threads)
        model = gn.presets.build("resnet_mini", x.shape[1:], 3, seed=seed)
        assert parts_for(model.layers, x) == int(threads)      # never more parts than threads
        results[threads] = one_step(model, x, y) + (model,)
    (value_1, dx_1, grads_1, alone), (value_2, dx_2, grads_2, split) = results["1"], results["2"]
    assert value_2 == pytest.approx(value_1, rel=1e-12)
    assert_matches(dx_2, dx_1, rtol=1e-12)
    for name, grad in grads_1.items():
        assert_matches(grads_2[name], grad, rtol=1e-12)
    norms = [(a, b) for a, b in zip(alone.layers, split.layers) if isinstance(a, gn.BatchNorm2D)]
    for a, b in norms:                                            # updated once, from the whole batch
        for key in ("running_mean", "running_var"):
            assert_matches(b.buffers[key], a.buffers[key], rtol=1e-12)
    return dx_2, norms


def test_batch_norm_in_training_split_over_threads_equals_one_pass_and_pytorch(monkeypatch):
    """BatchNorm2D's batch statistics summed over the parts (PartSums): the same loss, gradients and running
    statistics as one pass (float64, 1e-12) and as PyTorch in training mode (1e-10)."""
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((150, 1, 12, 12)), rng.integers(0, 3, 150)
    dx_2, norms = resnet_mini_split_equals_one_pass(monkeypatch, x, y, seed=1)      # two parts of 75
    twin = gn.to_torch(gn.presets.build("resnet_mini", (1, 12, 12), 3, seed=1)).train()
    x_t = torch.tensor(x, requires_grad=True)
    torch.nn.functional.cross_entropy(twin(x_t), torch.tensor(y)).backward()
    assert_matches(dx_2, x_t.grad)
    torch_norms = [m for m in twin.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(torch_norms) == len(norms)
    for (_, ours), theirs in zip(norms, torch_norms):
        assert_matches(ours.buffers["running_mean"], theirs.running_mean)
        assert_matches(ours.buffers["running_var"], theirs.running_var)


def test_a_failing_part_breaks_the_other_parts_wait_and_its_own_error_is_raised(monkeypatch):
    monkeypatch.setenv("GLASSNET_THREADS", "2")
    model = gn.Sequential([gn.Conv2D(2, 3, 3, rng=0), gn.BatchNorm2D(3), gn.ReLU(), gn.Flatten()])
    x = np.random.default_rng(8).standard_normal((60, 2, 6, 6))
    original = gn.BatchNorm2D.forward

    def fails_in_the_second_part(self, inputs):
        if inputs.shape[0] == 30 and self.group_sum is not None and self.buffers is not model[1].buffers:
            raise gn.GlassnetError("part 2 failed")
        return original(self, inputs)
    monkeypatch.setattr(gn.BatchNorm2D, "forward", fails_in_the_second_part)
    with pytest.raises(gn.GlassnetError, match="part 2 failed"):        # not the broken barrier, no hang
        model.forward(x)
    monkeypatch.setattr(gn.BatchNorm2D, "forward", original)
    assert model.forward(x).shape == (60, 48)                              # the next pass runs


class Runner:
    def __init__(self, **grads):
        self.grads = grads


def test_the_gradient_fold_sums_in_part_and_call_order_whichever_part_finishes_first():
    """GradientFold: layer 0 called by nodes 0 and 2 (shared), layer 1 by node 1; three parts. Its sums go
    part by part, call by call, so values whose sum depends on the order (1e16 + 1 - 1e16) come out the
    same bits in whatever order the parts hand them in."""
    terms = {(0, 0): 1e16, (0, 2): 1.0, (1, 0): -1e16, (1, 2): 1.0, (2, 0): 1.0, (2, 2): 0.5}
    in_order = ((((1e16 + 1.0) + -1e16) + 1.0) + 1.0) + 0.5                  # 2.5: in this order, by hand
    assert in_order == 2.5 and sum(reversed(list(terms.values()))) != in_order
    orders = [sorted(terms), sorted(terms, reverse=True), [(1, 2), (2, 0), (0, 2), (1, 0), (2, 2), (0, 0)]]
    for order in orders:
        fold = GradientFold(uses=[[0, 2], [1]], parts=3)
        runners = {key: Runner(weight=np.array([value])) for key, value in terms.items()}
        dense = {part: Runner(weight=np.array([float(part)]), bias=np.array([2.0 * part])) for part in range(3)}
        for part, k in order:
            fold.add(part, k, runners[part, k])
            assert runners[part, k].grads == {}                              # let go of at once
        for part in (2, 0, 1):
            fold.add(part, 1, dense[part])
        layers = [Runner(), Runner()]
        layers[0].params, layers[1].params = {"weight": None}, {"weight": None, "bias": None}
        fold.write_into(layers)
        assert layers[0].grads["weight"][0] == in_order
        assert layers[1].grads["weight"][0] == 3.0 and layers[1].grads["bias"][0] == 6.0


def test_large_images_with_batch_norm_in_training_split_one_or_two_a_part_equal_one_pass(monkeypatch):
    """3x160x160 images (76,800 values: two make a part): resnet_mini's training step at batch 4 runs as two
    parts of two side by side, BatchNorm's statistics summed over them, and gives one pass's loss, dL/dx,
    gradients and running statistics (float64, 1e-12)."""
    rng = np.random.default_rng(9)
    x, y = rng.standard_normal((4, 3, 160, 160)), rng.integers(0, 3, 4)
    resnet_mini_split_equals_one_pass(monkeypatch, x, y, seed=2)


@pytest.mark.parametrize("threads", ["1", "2"])               # one pass, and the batch split
def test_backward_lets_the_last_gradients_go_before_it_makes_new_ones(monkeypatch, batch, threads):
    """Two sets of gradients are never held together: when the last layer's backward (the first to run)
    starts, the first layer's gradients of the last step are already gone."""
    monkeypatch.setenv("GLASSNET_THREADS", threads)
    x, y = batch
    model = network()
    one_step(model, x, y)
    last_weights = weakref.ref(model.layers[0].grads["weight"])
    seen = []
    last = model.layers[-1]
    original = type(last).backward

    def backward(self, dy):
        seen.append(last_weights() is None)
        return original(self, dy)
    monkeypatch.setattr(type(last), "backward", backward)
    one_step(model, x, y)
    assert seen and all(seen)


def test_a_split_forward_does_not_hold_an_earlier_forwards_caches(monkeypatch):
    """A forward with no backward after it (a look at the outputs) leaves its caches in the layers; the next
    forward lets them go before it makes its own (a batch split's parts never read them): its peak is the
    same with or without that earlier forward."""
    monkeypatch.setenv("GLASSNET_THREADS", "2")
    rng = np.random.default_rng(10)
    model = gn.Sequential([gn.Conv2D(3, 16, 3, padding=1, rng=0), gn.ReLU(), gn.Conv2D(16, 16, 3, padding=1, rng=1),
                           gn.ReLU(), gn.Flatten(), gn.Dense(16 * 24 * 24, 3, rng=2)])
    big, look = rng.standard_normal((96, 3, 24, 24)), rng.standard_normal((47, 3, 24, 24))
    assert parts_for(model.layers, big) == 2 and parts_for(model.layers, look) == 1

    def peak_of_a_forward():                    # the traced peak, counted from the start of the test
        tracemalloc.reset_peak()
        model.forward(big)
        peak = tracemalloc.get_traced_memory()[1]
        model._pass = None
        for layer in model.layers:
            layer.clear_cache()
        return peak
    tracemalloc.start()
    try:
        model.forward(big)
        alone = peak_of_a_forward()
        model.forward(look)                     # ~4 MB of caches kept (47 x 16 x 24 x 24 x 8 bytes, twice)
        after_a_look = peak_of_a_forward()
    finally:
        tracemalloc.stop()
    assert after_a_look < alone + 1_000_000, (alone, after_a_look)


def dropout_network(seed):
    x = gn.Input((2, 10, 10))
    shared = gn.Dropout(0.3, rng=np.random.default_rng(seed))             # one generator, two calls
    a = shared(gn.ReLU()(gn.Conv2D(2, 4, 3, padding=1, rng=0)(x)))
    b = gn.Dropout(0.5, rng=seed + 1, noise_shape=(4, 1, 1))(a)            # whole channels
    c = shared(gn.Flatten()(gn.Add()([a, b])))
    return gn.Model(x, gn.Dense(400, 3, rng=1)(c))


def test_dropout_in_training_split_over_threads_draws_one_pass_masks(monkeypatch, batch):
    """Dropout in training joins the split: the batch's masks are drawn before the parts run, in node order
    (a generator shared by two calls, a noise_shape), so two steps in a row give one pass's loss (bit for
    bit), dL/dx and gradients (1e-12), and the generators end where one pass leaves them."""
    x, y = batch
    results = {}
    for threads in ("1", "2"):
        monkeypatch.setenv("GLASSNET_THREADS", threads)
        model = dropout_network(seed=11)
        assert parts_for(model.layers, x) == (1 if threads == "1" else 3)
        steps = [one_step(model, x, y) for _ in range(2)]
        draws = [layer.rng.random(3) for layer in model.layers if isinstance(layer, gn.Dropout)]
        results[threads] = steps, draws
    (steps_1, draws_1), (steps_2, draws_2) = results["1"], results["2"]
    for (value_1, dx_1, grads_1), (value_2, dx_2, grads_2) in zip(steps_1, steps_2):
        assert value_2 == value_1                                # the same masks: the same loss, bit for bit
        np.testing.assert_allclose(dx_2, dx_1, rtol=1e-12, atol=1e-15)
        for name, grad in grads_1.items():
            np.testing.assert_allclose(grads_2[name], grad, rtol=1e-12, atol=1e-15, err_msg=name)
    for a, b in zip(draws_1, draws_2):
        np.testing.assert_array_equal(a, b)
