"""Graph models (gn.Input, gn.Model, merges, shared layers) against PyTorch float64, relative 1e-10:
forward, loss, dL/dx and every parameter gradient, then 20 optimizer steps, BatchNorm inside branches."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import glassnet as gn
from reference import assert_matches, tensor

rng = np.random.default_rng(0)


def copy_weights(pairs):
    """torch module -> glassnet layer weights (Dense's weight is (in, out), Linear's (out, in))."""
    for layer, module in pairs:
        for key, value in layer.params.items():
            source = getattr(module, key).detach().numpy()
            value[...] = source.T if isinstance(layer, gn.Dense) and key == "weight" else source


def torch_grad(module, key, layer):
    grad = getattr(module, key).grad.numpy()
    return grad.T if isinstance(layer, gn.Dense) and key == "weight" else grad


class ThreeReaders(torch.nn.Module):
    """a = relu(conv(x)) is read by three nodes: two convolutions and the Add that joins them."""

    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(2, 4, 3, padding=1)
        self.branch3 = torch.nn.Conv2d(4, 4, 3, padding=1)
        self.branch1 = torch.nn.Conv2d(4, 4, 1)
        self.head = torch.nn.Linear(4, 3)

    def forward(self, x):
        a = F.relu(self.stem(x))
        s = F.relu(a + self.branch3(a) + self.branch1(a))
        return self.head(s.mean(dim=(2, 3)))


def three_readers():
    module = ThreeReaders()
    stem, branch3, branch1 = gn.Conv2D(2, 4, 3, padding=1), gn.Conv2D(4, 4, 3, padding=1), gn.Conv2D(4, 4, 1)
    head = gn.Dense(4, 3)
    x = gn.Input((2, 6, 6))
    a = gn.ReLU()(stem(x))
    s = gn.ReLU()(gn.Add()([a, branch3(a), branch1(a)]))
    model = gn.Model(x, head(gn.GlobalAvgPool2D()(s)))
    pairs = [(stem, module.stem), (branch3, module.branch3), (branch1, module.branch1), (head, module.head)]
    return model, module, pairs, (2, 6, 6)


class ThreeWayConcat(torch.nn.Module):
    """Inception-style: 1x1, 3x3 and a max-pool branch, concatenated on channels."""

    def __init__(self):
        super().__init__()
        self.one = torch.nn.Conv2d(3, 2, 1)
        self.three = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.head = torch.nn.Linear((2 + 4 + 3) * 5 * 5, 4)

    def forward(self, x):
        pooled = F.max_pool2d(x, 3, stride=1, padding=1)
        joined = torch.cat([F.relu(self.one(x)), torch.tanh(self.three(x)), pooled], dim=1)
        return self.head(joined.flatten(1))


def three_way_concat():
    module = ThreeWayConcat()
    one, three, head = gn.Conv2D(3, 2, 1), gn.Conv2D(3, 4, 3, padding=1), gn.Dense(9 * 25, 4)
    x = gn.Input((3, 5, 5))
    joined = gn.Concatenate(axis=1)([gn.ReLU()(one(x)), gn.Tanh()(three(x)),
                                     gn.MaxPool2D(3, stride=1, padding=1)(x)])
    model = gn.Model(x, head(gn.Flatten()(joined)))
    return model, module, [(one, module.one), (three, module.three), (head, module.head)], (3, 5, 5)


class SharedTwice(torch.nn.Module):
    """One convolution called at two depths, a gate (Multiply) and a max head."""

    def __init__(self):
        super().__init__()
        self.shared = torch.nn.Conv2d(3, 3, 3, padding=1)
        self.gate = torch.nn.Conv2d(3, 3, 1)
        self.head = torch.nn.Linear(3, 2)

    def forward(self, x):
        h = torch.tanh(self.shared(x))
        h = self.shared(h) * torch.sigmoid(self.gate(x))
        return self.head(h.amax(dim=(2, 3)))


def shared_twice():
    module = SharedTwice()
    shared, gate, head = gn.Conv2D(3, 3, 3, padding=1), gn.Conv2D(3, 3, 1), gn.Dense(3, 2)
    x = gn.Input((3, 4, 4))
    h = gn.Tanh()(shared(x))
    h = gn.Multiply()([shared(h), gn.Sigmoid()(gate(x))])
    model = gn.Model(x, head(gn.GlobalMaxPool2D()(h)))
    return model, module, [(shared, module.shared), (gate, module.gate), (head, module.head)], (3, 4, 4)


class BranchNorms(torch.nn.Module):
    """BatchNorm inside both branches of a residual block. The convolutions have no bias, as in ResNet: a
    bias before BatchNorm has a gradient of exactly 0 whose rounding noise Adam would scale to full steps."""

    def __init__(self):
        super().__init__()
        self.conv_a, self.norm_a = torch.nn.Conv2d(2, 3, 3, padding=1, bias=False), torch.nn.BatchNorm2d(3)
        self.conv_b, self.norm_b = torch.nn.Conv2d(2, 3, 1, bias=False), torch.nn.BatchNorm2d(3)
        self.head = torch.nn.Linear(3, 3)

    def forward(self, x):
        a = F.relu(self.norm_a(self.conv_a(x)))
        b = self.norm_b(self.conv_b(x))
        return self.head(F.relu(a + b).mean(dim=(2, 3)))


def branch_norms():
    module = BranchNorms()
    conv_a, norm_a = gn.Conv2D(2, 3, 3, padding=1, bias=False), gn.BatchNorm2D(3)
    conv_b, norm_b = gn.Conv2D(2, 3, 1, bias=False), gn.BatchNorm2D(3)
    head = gn.Dense(3, 3)
    x = gn.Input((2, 5, 5))
    a = gn.ReLU()(norm_a(conv_a(x)))
    b = norm_b(conv_b(x))
    model = gn.Model(x, head(gn.GlobalAvgPool2D()(gn.ReLU()(gn.Add()([a, b])))))
    pairs = [(conv_a, module.conv_a), (norm_a, module.norm_a), (conv_b, module.conv_b), (norm_b, module.norm_b),
             (head, module.head)]
    return model, module, pairs, (2, 5, 5)


NETS = {"three_readers": three_readers, "three_way_concat": three_way_concat, "shared_twice": shared_twice,
        "branch_norms": branch_norms}


def build(name):
    torch.manual_seed(1)
    model, module, pairs, shape = NETS[name]()
    copy_weights(pairs)
    return model, module, pairs, shape


@pytest.mark.parametrize("name", NETS)
def test_forward_loss_and_every_gradient_match_pytorch(name):
    model, module, pairs, shape = build(name)
    x = rng.normal(size=(5,) + shape)
    labels = rng.integers(0, 2, size=5)
    loss_fn = gn.SoftmaxCrossEntropy()
    logits = model.forward(x)
    loss = loss_fn.forward(logits, labels)
    dx = model.backward(loss_fn.backward())

    x_t = tensor(x, grad=True)
    logits_t = module(x_t)
    loss_t = F.cross_entropy(logits_t, torch.tensor(labels))
    loss_t.backward()
    assert_matches(logits, logits_t)
    assert abs(loss - loss_t.item()) <= 1e-10 * abs(loss_t.item())
    assert_matches(dx, x_t.grad)
    checked = 0
    for layer, module_part in pairs:
        for key in layer.params:
            assert_matches(layer.grads[key], torch_grad(module_part, key, layer))
            checked += 1
    assert checked == sum(len(layer.params) for layer, _ in pairs)


@pytest.mark.parametrize("name", NETS)
@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_twenty_steps_match_pytorch(name, optimizer):
    model, module, pairs, shape = build(name)
    if optimizer == "momentum":
        opt, opt_t = gn.SGD(model, lr=0.05, momentum=0.9), torch.optim.SGD(module.parameters(), lr=0.05, momentum=0.9)
    else:
        opt, opt_t = gn.Adam(model, lr=0.01), torch.optim.Adam(module.parameters(), lr=0.01)
    loss_fn = gn.SoftmaxCrossEntropy()
    data = np.random.default_rng(2)
    for _ in range(20):
        x, labels = data.normal(size=(6,) + shape), data.integers(0, 2, size=6)
        loss_fn.forward(model.forward(x), labels)
        model.backward(loss_fn.backward(), input_grad=False)
        opt.step()
        opt_t.zero_grad()
        F.cross_entropy(module(tensor(x)), torch.tensor(labels)).backward()
        opt_t.step()
    for layer, module_part in pairs:
        for key, value in layer.params.items():
            reference = getattr(module_part, key).detach().numpy()
            assert_matches(value, reference.T if isinstance(layer, gn.Dense) and key == "weight" else reference)
        for key, value in layer.buffers.items():
            assert_matches(value, getattr(module_part, key))
    x = data.normal(size=(4,) + shape)
    module.eval()
    assert_matches(model.eval().forward(x), module(tensor(x)))     # evaluation mode: the running statistics


def test_a_shared_layer_is_listed_once_and_stepped_once():
    model, _, pairs, _ = build("shared_twice")
    shared = pairs[0][0]
    assert [id(layer) for layer in model.layers].count(id(shared)) == 1
    assert len(model.graph.nodes) == len(model.layers) + 1
    names = [name for name, layer, _ in model.named_parameters() if layer is shared]
    assert len(names) == 2                                          # weight and bias, once each


def test_input_gradient_parts_at_a_fan_out_sum_to_the_total():
    """The gradient a value receives is the sum of its readers' gradients (autograd's rule), by hand: for
    y = a + 2a + 3a with a = x (three readers through linear maps) dL/dx = 6 dy."""
    x = gn.Input((3,))
    layers = [gn.Dense(3, 3, bias=False) for _ in range(3)]
    for c, layer in zip((1, 2, 3), layers):
        layer.params["weight"][...] = c * np.eye(3)
    model = gn.Model(x, gn.Add()([layer(x) for layer in layers]))
    model.forward(np.ones((2, 3)))
    dy = rng.normal(size=(2, 3))
    np.testing.assert_array_equal(model.backward(dy), 6 * dy)


def test_the_fan_out_copies_nothing():
    """Add hands the same dy to every input; the sum buffer is the only new array at the fan-out."""
    x = gn.Input((4,))
    ident = gn.Identity()(x)
    model = gn.Model(x, gn.Add()([ident, ident]))
    model.forward(np.ones((2, 4)))
    dy = np.ones((2, 4))
    dx = model.backward(dy)
    np.testing.assert_array_equal(dx, 2 * dy)
    from glassnet.models.graph import GradientSums
    sums = GradientSums()
    sums.add(0, dy)
    assert sums.grads[0] is dy                     # the first gradient kept as it is
    sums.add(0, dy)
    buffer = sums.grads[0]
    assert buffer is not dy
    sums.add(0, dy)
    assert sums.grads[0] is buffer                 # later ones added into the one buffer
    np.testing.assert_array_equal(buffer, 3 * dy)


CACHE_NAMES = ("_cache", "_x", "_input_shape", "_scaled_mask")


def keeps_something(layer):
    return any(getattr(layer, name, None) is not None for name in CACHE_NAMES)


def test_backward_lets_each_nodes_cache_go_as_soon_as_its_own_backward_has_run():
    """As PyTorch frees a node's saved tensors: when node k's backward is done, nodes k.. keep nothing (a
    ReLU keeps its mask, which fit reads after the step), nodes before k keep what they need; the gradients
    are the ones test_forward_loss_and_every_gradient_match_pytorch checks. A second backward of the same
    forward is refused by name."""
    model = residual_classifier()
    graph, runners = model.graph, model.graph.runners()
    x = rng.normal(size=(2, 1, 8, 8))
    graph.forward([x], runners)
    kept = [k for k, runner in enumerate(runners) if keeps_something(runner)]
    assert len(kept) >= 6                     # the convolutions, BatchNorm, ReLUs, max pool, pooling, Dense

    def watch(k, grad, input_grads, parts):
        for j in kept:
            still = keeps_something(runners[j])
            assert still == (j < k or isinstance(runners[j], gn.ReLU)), (k, j, runners[j])
    graph.backward([np.ones((2, 3))], runners, watch=watch)

    model.forward(x)
    model.backward(np.ones((2, 3)))
    relus = [layer for layer in model.layers if isinstance(layer, gn.ReLU)]
    assert all(layer.positive_mask().dtype == bool for layer in relus)
    with pytest.raises(gn.GlassnetError, match="allows one backward"):
        model.backward(np.ones((2, 3)))


def residual_classifier():
    """A small residual net with BatchNorm and a shared ReLU-free shortcut, for the file and fit tests."""
    x = gn.Input((1, 8, 8))
    stem = gn.ReLU()(gn.Conv2D(1, 4, 3, padding=1, rng=1)(x))
    branch = gn.BatchNorm2D(4)(gn.Conv2D(4, 4, 3, padding=1, bias=False, rng=2)(stem))
    joined = gn.ReLU()(gn.Add()([stem, branch]))
    wide = gn.Concatenate()([joined, gn.MaxPool2D(3, stride=1, padding=1)(stem)])
    return gn.Model(x, gn.Dense(8, 3, rng=3)(gn.GlobalAvgPool2D()(wide)))


def test_save_and_load_give_the_same_graph_and_numbers(tmp_path):
    model = residual_classifier()
    x = rng.normal(size=(4, 1, 8, 8))
    model.fit(x, np.array([0, 1, 2, 0]), epochs=1, batch_size=4, verbose=0)
    model.eval()
    path = gn.save(model, tmp_path / "graph.glassnet")
    loaded = gn.load(path)
    assert isinstance(loaded, gn.Model) and not isinstance(loaded, gn.Sequential)
    assert loaded.graph.nodes == model.graph.nodes and loaded.graph.outputs == model.graph.outputs
    np.testing.assert_array_equal(loaded.eval().forward(x), model.forward(x))
    assert loaded.get_config() == model.get_config()
    assert gn.load(gn.save(loaded, tmp_path / "again.glassnet")).get_config() == model.get_config()


def test_checkpoint_resume_of_a_graph_equals_the_uninterrupted_run_bit_for_bit(tmp_path):
    import shutil
    data = np.random.default_rng(5)
    x, y = data.normal(size=(24, 1, 8, 8)), data.integers(0, 3, size=24)
    settings = dict(epochs=3, batch_size=8, verbose=0, seed=0)
    whole = residual_classifier()
    whole.fit(x, y, optimizer=gn.Adam(whole, lr=0.01), checkpoint=tmp_path / "run.ckpt", **settings)
    shutil.copy(tmp_path / "run.ckpt.prev", tmp_path / "two-epochs.ckpt")        # written after epoch 2 of 3
    saved = gn.load_checkpoint(tmp_path / "two-epochs.ckpt")
    assert isinstance(saved.model, gn.Model) and saved.progress["epoch"] == 3     # carries on at epoch 3
    resumed = residual_classifier()
    resumed.fit(x, y, optimizer=gn.Adam(resumed, lr=0.01), checkpoint=tmp_path / "two-epochs.ckpt", resume=True,
                **settings)
    for name, value in whole.state_arrays().items():
        np.testing.assert_array_equal(resumed.state_arrays()[name], value, err_msg=name)
    other = gn.Model(*_other_graph())
    with pytest.raises(gn.GlassnetError, match="different architecture"):
        other.fit(x, y, checkpoint=tmp_path / "two-epochs.ckpt", resume=True, **settings)


def _other_graph():
    x = gn.Input((1, 8, 8))
    return x, gn.Dense(64, 3, rng=0)(gn.Flatten()(x))


def test_shape_mismatches_fail_when_the_graph_is_built_naming_both_shapes():
    x = gn.Input((4, 8, 8))
    small = gn.MaxPool2D(2)(x)
    with pytest.raises(gn.GlassnetError, match=r"Add called on shape \(4, 8, 8\) and \(4, 4, 4\): Add: inputs must "
                                               r"have equal sizes, or 1, on each axis"):
        gn.Add()([x, small])
    with pytest.raises(gn.GlassnetError, match=r"Concatenate called on shape \(4, 8, 8\) and \(4, 4, 4\): "
                                               r"Concatenate: inputs must agree on every axis but axis 1"):
        gn.Concatenate()([x, small])
    with pytest.raises(gn.GlassnetError, match=r"Dense called on shape \(256,\): Dense: expected one sample of "
                                               r"shape \(10,\). Received: \(256,\)"):
        gn.Dense(10, 2)(gn.Flatten()(x))
    with pytest.raises(gn.GlassnetError, match=r"Conv2D called on shape \(4, 8, 8\): Conv2D: expected one sample of "
                                               r"shape \(3, H, W\)"):
        gn.Conv2D(3, 2, 3)(x)
    with pytest.raises(gn.GlassnetError, match=r"ReLU: takes one symbolic value; only merges"):
        gn.ReLU()([x, x])
    with pytest.raises(gn.GlassnetError, match=r"Add: expected a list of at least 2 symbolic values"):
        gn.Add()(x)
    assert gn.Concatenate()([x, x, x]).shape == (12, 8, 8)
    assert gn.Concatenate(axis=-1)([small, small]).shape == (4, 4, 8)


def test_models_refuse_inputs_they_do_not_have_and_inputs_they_do_not_use():
    x, other = gn.Input((3,)), gn.Input((3,), name="other")
    y = gn.Add()([gn.Dense(3, 3)(x), other])
    with pytest.raises(gn.GlassnetError, match=r"the outputs depend on other \(\(3,\)\), which is not among the "
                                               r"model's inputs"):
        gn.Model(x, y)
    with pytest.raises(gn.GlassnetError, match=r"model input 1 is read by no node"):
        gn.Model([x, gn.Input((3,))], gn.Dense(3, 3)(x))
    with pytest.raises(gn.GlassnetError, match=r"Model: outputs must be symbolic values"):
        gn.Model(x, np.ones(3))
    with pytest.raises(gn.GlassnetError, match=r"Input: shape must be one sample's shape"):
        gn.Input((0, 3))
    model = gn.Model(x, gn.Dense(3, 2)(x))
    with pytest.raises(gn.GlassnetError, match=r"expected a batch of shape \(N, 3\). Received: \(2, 4\)"):
        model.forward(np.ones((2, 4)))


def test_two_inputs_and_two_outputs_run_forward_and_backward_with_lists():
    """A siamese pair: one Dense shared by two inputs; dL/d(each input) by hand: W applied to dy."""
    a, b = gn.Input((3,)), gn.Input((3,))
    shared = gn.Dense(3, 2, bias=False, rng=0)
    model = gn.Model([a, b], [shared(a), shared(b)])
    xa, xb = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    ya, yb = model.forward([xa, xb])
    weight = shared.params["weight"]
    np.testing.assert_allclose(ya, xa @ weight, rtol=1e-14)
    np.testing.assert_allclose(yb, xb @ weight, rtol=1e-14)
    da, db = rng.normal(size=(4, 2)), rng.normal(size=(4, 2))
    ga, gb = model.backward([da, db])
    np.testing.assert_allclose(ga, da @ weight.T, rtol=1e-14)
    np.testing.assert_allclose(gb, db @ weight.T, rtol=1e-14)
    # y = x W for both calls  =>  dL/dW = xa^T da + xb^T db (summed over the calls)
    np.testing.assert_allclose(shared.grads["weight"], xa.T @ da + xb.T @ db, rtol=1e-13)
    with pytest.raises(gn.GlassnetError, match=r"fit: works on models with one input and one output"):
        model.fit(xa, np.zeros(4, dtype=int))


def test_gradcheck_trace_and_compare_work_on_a_graph():
    model = residual_classifier()
    x, labels = rng.normal(size=(3, 1, 8, 8)), np.array([0, 2, 1])
    errors = gn.gradcheck(model, x, labels, gn.SoftmaxCrossEntropy())
    assert set(errors) == {"input"} | {name for name, _, _ in model.named_parameters()}
    assert max(errors.values()) < 1e-5          # finite differences across ReLU and max-pool kinks
    record = gn.trace(model, x, labels, gn.SoftmaxCrossEntropy())
    assert len(record.steps) == len(model.graph.nodes)
    add = next(step for step in record.steps if step.layer == "Add()")
    assert add.merges and len(add.input) == 2 and add.sources == ["1: ReLU", "3: BatchNorm2D"]
    np.testing.assert_array_equal(add.output, add.input[0] + add.input[1])
    stem = record.steps[1]                                      # the ReLU read by the convolution, Add and pool
    assert len(stem.grad_parts) == 3
    np.testing.assert_allclose(stem.grad_output, sum(stem.grad_parts), rtol=1e-14, atol=1e-17)
    text = record.text()
    assert "read by 3 nodes: dL/d(output) is the sum of their gradients" in text
    assert "node 4: Add() <- 1: ReLU, 3: BatchNorm2D" in text
    html = record._repr_html_()
    assert "dL/d(output), part 3 (from reader 3)" in html and "&larr; 1: ReLU, 3: BatchNorm2D" in html
    again = gn.load(gn.save(model, "/tmp/glassnet-compare-graph.glassnet"))
    comparison = gn.compare(model, again, x, labels, gn.SoftmaxCrossEntropy())
    assert len(comparison.layers) == len(model.graph.nodes) and comparison.largest == 0.0
