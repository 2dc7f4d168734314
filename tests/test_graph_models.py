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
