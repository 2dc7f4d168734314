"""20-step trajectories of SGD (momentum, dampening, Nesterov, weight decay) and Adam against torch.optim."""
import numpy as np
import pytest
import torch

import glassnet as gn
from reference import assert_matches, tensor

OPTIMIZERS = [
    ("sgd", {"lr": 0.1}),
    ("sgd", {"lr": 0.05, "momentum": 0.9}),
    ("sgd", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3}),
    ("sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("sgd", {"lr": 0.05, "weight_decay": 0.01}),
    ("sgd", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.02}),
    ("adam", {"lr": 0.01}),
    ("adam", {"lr": 0.003, "betas": (0.8, 0.99), "eps": 1e-6}),
    ("adam", {"lr": 0.01, "weight_decay": 0.05}),
]


@pytest.mark.parametrize("kind, kwargs", OPTIMIZERS)
def test_trajectory_matches_torch_optim(kind, kwargs):
    rng = np.random.default_rng(0)
    model = gn.Sequential([gn.Conv2D(2, 3, 2, rng=1), gn.Flatten(), gn.Dense(12, 4, rng=2)])
    torch_params = {name: tensor(p, grad=True) for name, p in model.parameters().items()}
    ours = (gn.SGD if kind == "sgd" else gn.Adam)(model, **kwargs)
    theirs = (torch.optim.SGD if kind == "sgd" else torch.optim.Adam)(list(torch_params.values()), **kwargs)
    for step in range(20):
        for name, layer, key in model.named_parameters():
            grad = rng.standard_normal(layer.params[key].shape)
            layer.grads[key] = grad
            torch_params[name].grad = tensor(grad)
        ours.step()
        theirs.step()
        for name, param in model.parameters().items():
            assert_matches(param, torch_params[name])


def test_step_updates_in_place_so_user_references_stay_live():
    model = gn.Sequential([gn.Dense(2, 2, rng=0)])
    weight = model[0].params["weight"]
    before = weight.copy()
    model[0].grads = {"weight": np.ones((2, 2)), "bias": np.ones(2)}
    gn.SGD(model, lr=0.5).step()
    np.testing.assert_allclose(weight, before - 0.5)  # hand-derived: w - lr * 1


def test_step_without_backward_is_an_error():
    model = gn.Sequential([gn.Dense(2, 2, rng=0)])
    with pytest.raises(ValueError, match="no gradient for 0.weight"):
        gn.Adam(model).step()
