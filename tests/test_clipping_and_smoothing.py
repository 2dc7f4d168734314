"""Label smoothing against torch.nn.CrossEntropyLoss (loss and gradient at 1e-12, labels and probability
targets); gradient clipping against torch.nn.utils (the total norm and the clipped gradients)."""
import numpy as np
import pytest
import torch

import glassnet as gn
from reference import tensor


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.35, 0.9])
@pytest.mark.parametrize("targets", ["labels", "probabilities"])
def test_label_smoothing_matches_torch(smoothing, targets):
    rng = np.random.default_rng(int(smoothing * 100))
    logits = rng.standard_normal((6, 5)) * 4
    target = rng.integers(0, 5, 6) if targets == "labels" else rng.dirichlet(np.ones(5), 6)
    loss = gn.SoftmaxCrossEntropy(label_smoothing=smoothing)
    value, grad = loss.forward(logits, target), loss.backward()
    z = tensor(logits, grad=True)
    expected = torch.nn.CrossEntropyLoss(label_smoothing=smoothing)(
        z, torch.tensor(target) if targets == "labels" else tensor(target))
    expected.backward()
    assert value == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(grad, z.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_label_smoothing_is_checked():
    for bad in (-0.1, 1.0, float("nan"), "a lot"):
        with pytest.raises(gn.GlassnetError,
                           match=r"SoftmaxCrossEntropy: label_smoothing must be a number in \[0, 1\)"):
            gn.SoftmaxCrossEntropy(label_smoothing=bad)


def model_with_gradients(scale):
    model = gn.Sequential([gn.Conv2D(2, 3, 2, rng=1), gn.BatchNorm2D(3), gn.Flatten(), gn.Dense(12, 4, rng=2)])
    rng = np.random.default_rng(5)
    for _, layer, key in model.named_parameters():
        layer.grads[key] = rng.standard_normal(layer.params[key].shape) * scale
    return model


@pytest.mark.parametrize("max_norm, scale", [(1.0, 1.0), (100.0, 1.0), (0.5, 10.0), (3.0, 0.01)])
def test_clip_grad_norm_matches_torch(max_norm, scale):
    model = model_with_gradients(scale)
    params = {name: tensor(p, grad=True) for name, p in model.parameters().items()}
    for name, layer, key in model.named_parameters():
        params[name].grad = tensor(layer.grads[key])
    total = gn.clip_grad_norm(model, max_norm)
    expected = torch.nn.utils.clip_grad_norm_(list(params.values()), max_norm)
    assert total == pytest.approx(expected.item(), rel=1e-12)
    for name, layer, key in model.named_parameters():
        np.testing.assert_allclose(layer.grads[key], params[name].grad.numpy(), rtol=1e-12, atol=1e-16)


def test_clip_grad_value_matches_torch():
    model = model_with_gradients(3.0)
    params = {name: tensor(p, grad=True) for name, p in model.parameters().items()}
    for name, layer, key in model.named_parameters():
        params[name].grad = tensor(layer.grads[key])
    gn.clip_grad_value(model, 0.7)
    torch.nn.utils.clip_grad_value_(list(params.values()), 0.7)
    for name, layer, key in model.named_parameters():
        np.testing.assert_array_equal(layer.grads[key], params[name].grad.numpy())


def test_clipping_arguments_are_checked():
    model = model_with_gradients(1.0)
    for bad in (0, -1.0, float("nan"), "big"):
        with pytest.raises(gn.GlassnetError, match="clip_grad_norm: max_norm must be a number > 0"):
            gn.clip_grad_norm(model, bad)
    with pytest.raises(gn.GlassnetError, match="clip_grad_value: clip_value must be a number > 0"):
        gn.clip_grad_value(model, 0.0)
    with pytest.raises(gn.GlassnetError, match="no gradients; call model.backward first"):
        gn.clip_grad_norm(gn.Sequential([gn.Dense(2, 2)]), 1.0)
