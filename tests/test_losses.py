"""Losses against PyTorch float64: values, gradients, targets as labels or one-hot, stability;
on every array library of tests/backends.py (predictions there, targets on the host)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import glassnet as gn
from reference import assert_matches, tensor


def torch_loss_and_grad(fn, pred):
    pred_t = tensor(pred, grad=True)
    value = fn(pred_t)
    value.backward()
    return value.item(), pred_t.grad.numpy()


def check(backend, loss, pred, target, torch_fn):
    value, grad = backend.loss_and_grad(loss, pred, target)
    ref_value, ref_grad = torch_loss_and_grad(torch_fn, pred)
    assert isinstance(value, float)
    assert value == pytest.approx(ref_value, rel=1e-10)
    assert_matches(grad, ref_grad)


@pytest.mark.parametrize("shape", [(5,), (4, 3), (2, 3, 4, 4)])
def test_mse_is_the_mean_over_all_elements(backend, shape):
    rng = np.random.default_rng(1)
    pred, target = rng.standard_normal(shape), rng.standard_normal(shape)
    check(backend, gn.MSE(), pred, target, lambda p: F.mse_loss(p, tensor(target)))


@pytest.mark.parametrize("shape", [(6, 1), (4, 3)])
def test_binary_cross_entropy_matches_torch(backend, shape):
    rng = np.random.default_rng(2)
    pred = rng.uniform(0.01, 0.99, shape)
    target = rng.uniform(0, 1, shape)  # soft targets too
    check(backend, gn.BinaryCrossEntropy(), pred, target, lambda p: F.binary_cross_entropy(p, tensor(target)))


def test_binary_cross_entropy_clamps_like_torch_at_zero_and_one(backend):
    pred = np.array([[0.0], [1.0], [0.5]])
    target = np.array([[1.0], [0.0], [1.0]])
    value, _ = backend.loss_and_grad(gn.BinaryCrossEntropy(), pred, target)
    assert value == pytest.approx(F.binary_cross_entropy(tensor(pred), tensor(target)).item(), rel=1e-12)


def test_cross_entropy_on_probabilities_with_labels_and_one_hot(backend):
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((5, 4))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array([0, 3, 1, 1, 2])
    one_hot = np.eye(4)[labels]
    reference = lambda p: F.nll_loss(torch.log(p), torch.tensor(labels))
    check(backend, gn.CrossEntropy(), probs, labels, reference)
    check(backend, gn.CrossEntropy(), probs, one_hot, reference)


@pytest.mark.parametrize("scale", [1.0, 30.0, 1000.0])
def test_softmax_cross_entropy_matches_torch_with_labels_and_probabilities(backend, scale):
    rng = np.random.default_rng(4)
    logits = scale * rng.standard_normal((6, 5))
    labels = rng.integers(0, 5, size=6)
    check(backend, gn.SoftmaxCrossEntropy(), logits, labels, lambda z: F.cross_entropy(z, torch.tensor(labels)))
    soft = rng.dirichlet(np.ones(5), size=6)
    check(backend, gn.SoftmaxCrossEntropy(), logits, soft, lambda z: F.cross_entropy(z, tensor(soft)))


def test_softmax_cross_entropy_extreme_logits_stay_finite(backend):
    logits = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, 1000.0]])
    value, grad = backend.loss_and_grad(gn.SoftmaxCrossEntropy(), logits, np.array([1, 2]))
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    assert value == pytest.approx(1000.0, rel=1e-12)  # -log_softmax = 2000 for row 0, 0 for row 1; mean 1000
    ref_value, ref_grad = torch_loss_and_grad(lambda z: F.cross_entropy(z, torch.tensor([1, 2])), logits)
    assert value == pytest.approx(ref_value, rel=1e-12)
    assert_matches(grad, ref_grad)


def test_softmax_cross_entropy_closed_form_gradient():
    # dL/dz = (softmax(z) - onehot) / N, derived by hand for z = 0: softmax = 1/K
    loss = gn.SoftmaxCrossEntropy()
    loss.forward(np.zeros((2, 4)), np.array([0, 3]))
    expected = (np.full((2, 4), 0.25) - np.eye(4)[[0, 3]]) / 2
    np.testing.assert_allclose(loss.backward(), expected, rtol=1e-15)


def test_float_labels_with_integer_values_are_accepted():
    loss = gn.SoftmaxCrossEntropy()
    a = loss.forward(np.ones((2, 3)), np.array([0.0, 2.0]))
    b = loss.forward(np.ones((2, 3)), np.array([0, 2]))
    assert a == b
