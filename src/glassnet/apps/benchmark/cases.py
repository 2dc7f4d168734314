"""The networks the benchmark times, and their PyTorch twins with identical weights."""
from dataclasses import dataclass

import numpy as np

from ...models import presets
from ...files.torch_convert import to_torch
from ...nn.losses import SoftmaxCrossEntropy
from ...training.loop import resolve_optimizer


@dataclass(frozen=True)
class Case:
    """One benchmark: a preset architecture on 28x28 grey images, trained at a batch size."""
    name: str
    arch: str
    batch_size: int
    optimizer: str  # "adam" (lr 1e-3) or "momentum" (lr 0.01, momentum 0.9) or "sgd" (lr 0.01)
    description: str


CASES = {
    "simple": Case("simple", "simple", 100, "adam",
                   "conv 30x5x5, relu, max pool 2, dense 100, relu, dense 10; batch 100, Adam"),
    "lenet": Case("lenet", "lenet", 64, "momentum",
                  "conv 16x3x3-relu-pool, conv 32x3x3-relu-pool, dense 128, dense 10; batch 64, SGD momentum"),
    "seed001": Case("seed001", "vz", 1, "sgd",
                    "seed 001's net: conv 8x3x3, max pool 2, dense 10; batch 1 (per-sample SGD)"),
    "resnet_mini": Case("resnet_mini", "resnet_mini", 64, "momentum",
                        "a graph: 3x3 stem, residual blocks of 16, 32, 64 channels with BatchNorm, global average "
                        "pool, dense 10; batch 64, SGD momentum"),
    "mobilenet_mini": Case("mobilenet_mini", "mobilenet_mini", 64, "momentum",
                           "a graph: 3x3 stem, four inverted residual blocks (1x1, depthwise 3x3, 1x1, BatchNorm, "
                           "ReLU6), global average pool, dense 10; batch 64, SGD momentum"),
}

INPUT_SHAPE = (1, 28, 28)
CLASSES = 10


def batch(case, dtype, seed=0, batch_size=None):
    """Identical random inputs (N, 1, 28, 28) and labels (N,) for both frameworks."""
    rng = np.random.default_rng(seed)
    n = batch_size or case.batch_size
    return rng.standard_normal((n,) + INPUT_SHAPE).astype(dtype), rng.integers(0, CLASSES, n)


def glassnet_trainer(case, dtype, seed=0):
    """(model, one training step function(x, y), inference function(x))."""
    model = presets.build(case.arch, INPUT_SHAPE, CLASSES, seed=seed, dtype=dtype)
    loss = SoftmaxCrossEntropy()
    optimizer = glassnet_optimizer(model, case.optimizer)

    def train_step(x, y):
        loss.forward(model.forward(x), y)
        model.backward(loss.backward(), input_grad=False)
        optimizer.step()

    def infer(x):
        return model.infer(x)

    return model, train_step, infer


def glassnet_optimizer(model, name):
    """Adam at lr 1e-3, or SGD (plain or momentum 0.9) at lr 0.01, as ``fit`` builds them."""
    return resolve_optimizer(model, name, 1e-3 if name == "adam" else 0.01)


def torch_trainer(case, dtype, seed=0):
    """The same network in PyTorch with glassnet's initial weights: (model, train_step, infer)."""
    import torch

    glass = presets.build(case.arch, INPUT_SHAPE, CLASSES, seed=seed, dtype=dtype)
    model = to_torch(glass)
    loss_fn = torch.nn.CrossEntropyLoss()
    if case.optimizer == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9 if case.optimizer == "momentum" else 0)

    def train_step(x, y):
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step()

    def infer(x):
        with torch.no_grad():
            return model(x)

    return model, train_step, infer
