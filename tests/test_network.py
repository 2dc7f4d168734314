"""A whole CNN trained for 20 steps next to the same network in PyTorch float64, on every array
library of tests/backends.py, and next to the same network on NumPy."""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import glassnet as gn
from backends import same_as_numpy
from glassnet.backend import to_numpy
from reference import assert_matches, tensor


def build_pair(rng):
    model = gn.Sequential([
        gn.Conv2D(1, 4, kernel_size=3, stride=2, padding=1, rng=rng),   # 12x12 -> 6x6
        gn.ReLU(),
        gn.Conv2D(4, 6, kernel_size=(3, 2), padding="same", rng=rng),   # 6x6 -> 6x6
        gn.ReLU(),
        gn.MaxPool2D(kernel_size=2),                                    # 6x6 -> 3x3
        gn.Flatten(),
        gn.Dense(6 * 3 * 3, 5, rng=rng),
    ])
    torch_model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, stride=2, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(4, 6, (3, 2), padding="same"),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(6 * 3 * 3, 5),
    )
    with torch.no_grad():
        for index in (0, 2):
            torch_model[index].weight.copy_(tensor(model[index].params["weight"]))
            torch_model[index].bias.copy_(tensor(model[index].params["bias"]))
        torch_model[6].weight.copy_(tensor(model[6].params["weight"].T))
        torch_model[6].bias.copy_(tensor(model[6].params["bias"]))
    return model, torch_model


@pytest.mark.parametrize("optimizer", ["sgd-momentum", "adam"])
def test_twenty_training_steps_match_torch(backend, optimizer):
    rng = np.random.default_rng(2024)
    model, torch_model = build_pair(rng)
    twin = copy.deepcopy(model)                          # the same network, trained on NumPy alongside
    backend.move(model)
    loss_fn, twin_loss = gn.SoftmaxCrossEntropy(), gn.SoftmaxCrossEntropy()
    if optimizer == "adam":
        opt, torch_opt = gn.Adam(model, lr=0.01), torch.optim.Adam(torch_model.parameters(), lr=0.01)
        twin_opt = gn.Adam(twin, lr=0.01)
    else:
        opt = gn.SGD(model, lr=0.05, momentum=0.9)
        torch_opt = torch.optim.SGD(torch_model.parameters(), lr=0.05, momentum=0.9)
        twin_opt = gn.SGD(twin, lr=0.05, momentum=0.9)
    x_all = rng.standard_normal((160, 1, 12, 12))
    y_all = rng.integers(0, 5, size=160)
    losses = []
    for step in range(20):
        x, y = x_all[step * 8:(step + 1) * 8], y_all[step * 8:(step + 1) * 8]
        loss = loss_fn.forward(model.forward(backend.array(x)), y)
        model.backward(loss_fn.backward())
        opt.step()
        if not backend.is_numpy:
            twin_value = twin_loss.forward(twin.forward(x), y)
            twin.backward(twin_loss.backward())
            twin_opt.step()
            assert loss == pytest.approx(twin_value, rel=1e-12, abs=0), f"step {step}: loss differs from NumPy's"

        torch_opt.zero_grad()
        torch_loss = F.cross_entropy(torch_model(tensor(x)), torch.tensor(y))
        torch_loss.backward()
        torch_opt.step()
        assert loss == pytest.approx(torch_loss.item(), rel=1e-9), f"step {step}"
        losses.append(loss)
    assert losses[-1] != losses[0]  # the network did move
    assert_matches(to_numpy(model[0].params["weight"]), torch_model[0].weight, rtol=1e-9)
    assert_matches(to_numpy(model[6].params["weight"]), torch_model[6].weight.T, rtol=1e-9)
    if not backend.is_numpy:
        for name, param in model.parameters().items():
            same_as_numpy(to_numpy(param), twin.parameters()[name], f"after 20 steps: {name}")
