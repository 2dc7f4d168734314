"""30-step trajectories of SGD (momentum, dampening, Nesterov, weight decay), Adam, AdamW, RMSprop (momentum,
centered) and Adagrad (lr_decay, initial accumulator) against torch.optim, on every array library of
tests/backends.py (and the same numbers as a NumPy twin to 1e-12)."""
import copy

import numpy as np
import pytest
import torch

import glassnet as gn
from backends import same_as_numpy
from glassnet.backend import to_numpy
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
    ("adamw", {"lr": 0.01}),
    ("adamw", {"lr": 0.02, "betas": (0.85, 0.98), "weight_decay": 0.1}),
    ("rmsprop", {"lr": 0.01}),
    ("rmsprop", {"lr": 0.005, "alpha": 0.9, "eps": 1e-6, "weight_decay": 0.01}),
    ("rmsprop", {"lr": 0.005, "momentum": 0.9}),
    ("rmsprop", {"lr": 0.005, "momentum": 0.5, "centered": True, "weight_decay": 0.02}),
    ("adagrad", {"lr": 0.1}),
    ("adagrad", {"lr": 0.1, "lr_decay": 0.05, "weight_decay": 0.01, "initial_accumulator_value": 0.2, "eps": 1e-8}),
]
CLASSES = {"sgd": (gn.SGD, torch.optim.SGD), "adam": (gn.Adam, torch.optim.Adam),
           "adamw": (gn.AdamW, torch.optim.AdamW), "rmsprop": (gn.RMSprop, torch.optim.RMSprop),
           "adagrad": (gn.Adagrad, torch.optim.Adagrad)}


@pytest.mark.parametrize("kind, kwargs", OPTIMIZERS)
def test_trajectory_matches_torch_optim(backend, kind, kwargs):
    rng = np.random.default_rng(0)
    model = gn.Sequential([gn.Conv2D(2, 3, 2, rng=1), gn.Flatten(), gn.Dense(12, 4, rng=2)])
    twin = copy.deepcopy(model)                         # the NumPy run, fed the same gradients
    torch_params = {name: tensor(p, grad=True) for name, p in model.parameters().items()}
    optimizer_class, torch_class = CLASSES[kind]
    ours, twins = optimizer_class(backend.move(model), **kwargs), optimizer_class(twin, **kwargs)
    theirs = torch_class(list(torch_params.values()), **kwargs)
    for step in range(30):
        for (name, layer, key), (_, twin_layer, _) in zip(model.named_parameters(), twin.named_parameters()):
            grad = rng.standard_normal(tuple(layer.params[key].shape))
            layer.grads[key] = backend.array(grad)
            twin_layer.grads[key] = grad
            torch_params[name].grad = tensor(grad)
        ours.step()
        twins.step()
        theirs.step()
        for name, param in model.parameters().items():
            backend.check_place(param)
            assert_matches(to_numpy(param), torch_params[name])
            if not backend.is_numpy:
                same_as_numpy(to_numpy(param), twin.parameters()[name], f"step {step}: {name}")


@pytest.mark.parametrize("kind", ["momentum", "adam"])
def test_optimizer_state_moves_with_the_model(backend, kind):
    """Ten steps on NumPy, model.to(the other library), ten more: the trajectory of twenty steps there."""
    rng = np.random.default_rng(1)
    model = gn.Sequential([gn.Dense(5, 3, rng=0)])
    torch_params = {name: tensor(p, grad=True) for name, p in model.parameters().items()}
    if kind == "adam":
        ours, theirs = gn.Adam(model, lr=0.01), torch.optim.Adam(list(torch_params.values()), lr=0.01)
    else:
        ours = gn.SGD(model, lr=0.05, momentum=0.9)
        theirs = torch.optim.SGD(list(torch_params.values()), lr=0.05, momentum=0.9)
    for step in range(20):
        if step == 10:
            backend.move(model)                       # parameters, and the optimizer's moments with them
            for entry in ours.state.values():
                backend.check_place(entry[0] if isinstance(entry, tuple) else entry)
        for name, layer, key in model.named_parameters():
            grad = rng.standard_normal(tuple(layer.params[key].shape))
            layer.grads[key] = backend.array(grad) if step >= 10 else grad
            torch_params[name].grad = tensor(grad)
        ours.step()
        theirs.step()
    for name, param in model.parameters().items():
        assert_matches(to_numpy(param), torch_params[name])


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


@pytest.mark.parametrize("kind", ["sgd", "adamw", "rmsprop"])
def test_decay_filter_equals_torch_parameter_groups(kind):
    """gn.decay_weights_only: weight decay on Conv2D and Dense weights only, as PyTorch's recipe of two
    parameter groups (biases and BatchNorm's scale and shift with weight_decay=0)."""
    rng = np.random.default_rng(3)
    model = gn.Sequential([gn.Conv2D(2, 3, 2, rng=1), gn.BatchNorm2D(3), gn.Flatten(), gn.Dense(12, 4, rng=2)])
    torch_params = {name: tensor(p, grad=True) for name, p in model.parameters().items()}
    decayed = [p for name, p in torch_params.items() if name in ("0.weight", "3.weight")]
    others = [p for name, p in torch_params.items() if name not in ("0.weight", "3.weight")]
    kwargs = {"lr": 0.01, "weight_decay": 0.1, **({"momentum": 0.9} if kind == "sgd" else {})}
    optimizer_class, torch_class = CLASSES[kind]
    ours = optimizer_class(model, decay_filter=gn.decay_weights_only, **kwargs)
    theirs = torch_class([{"params": decayed}, {"params": others, "weight_decay": 0.0}], **kwargs)
    for _ in range(30):
        for name, layer, key in model.named_parameters():
            grad = rng.standard_normal(tuple(layer.params[key].shape))
            layer.grads[key] = grad
            torch_params[name].grad = tensor(grad)
        ours.step()
        theirs.step()
    for name, param in model.parameters().items():
        assert_matches(param, torch_params[name])
    assert ours.hyperparameters()["decay_filter"] == "decay_weights_only"


def test_optimizer_arguments_are_checked_with_one_line():
    model = gn.Sequential([gn.Dense(2, 2)])
    cases = [(lambda: gn.AdamW(model, lr=-1.0), "AdamW: lr must be"),
             (lambda: gn.RMSprop(model, alpha=1.5), "RMSprop: alpha must be"),
             (lambda: gn.RMSprop(model, momentum=-0.1), "RMSprop: momentum must be"),
             (lambda: gn.Adagrad(model, lr_decay=-1.0), "Adagrad: lr_decay must be"),
             (lambda: gn.Adagrad(model, eps=0.0), "Adagrad: eps must be"),
             (lambda: gn.SGD(model, decay_filter="biases"), "SGD: decay_filter must be a function")]
    for make, message in cases:
        with pytest.raises(gn.GlassnetError, match=message):
            make()
