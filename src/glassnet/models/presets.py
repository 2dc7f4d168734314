"""Named architectures (used by the ``glassnet`` command) and each dataset's defaults."""
import numpy as np

from ..errors import GlassnetError
from ..nn.layers import BatchNorm2D, Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sigmoid, Tanh
from .sequential import Sequential


def _image_shape(input_shape, arch):
    if len(input_shape) != 3:
        raise GlassnetError(f"architecture '{arch}' needs image inputs (C, H, W), this dataset has "
                            f"inputs of shape {tuple(input_shape)}; try --arch mlp")
    return input_shape


def mlp(input_shape, outputs, rng, hidden=128):
    """Flatten, Dense(hidden), ReLU, Dense(outputs)."""
    features = int(np.prod(input_shape))
    return [Flatten(), Dense(features, hidden, rng=rng), ReLU(), Dense(hidden, outputs, rng=rng)]


def linear(input_shape, outputs, rng):
    """One Dense layer: linear (or, with softmax cross-entropy, multinomial logistic) regression."""
    return [Flatten(), Dense(int(np.prod(input_shape)), outputs, rng=rng)]


def xor_net(input_shape, outputs, rng):
    """Seed 002's 2-2-1 network with sigmoids (trained with MSE)."""
    return [Dense(int(np.prod(input_shape)), 2, weight_init="glorot", rng=rng), Sigmoid(),
            Dense(2, outputs, weight_init="glorot", rng=rng), Sigmoid()]


def seed(input_shape, outputs, rng):
    """Seed 004's CNN: Conv 16x3x3, tanh, Dense to outputs."""
    C, H, W = _image_shape(input_shape, "seed")
    return [Conv2D(C, 16, 3, rng=rng), Tanh(), Flatten(), Dense(16 * (H - 2) * (W - 2), outputs, rng=rng)]


def vz(input_shape, outputs, rng):
    """Seed 001's network: Conv 8x3x3 (no activation), max pool 2, Dense to outputs."""
    C, H, W = _image_shape(input_shape, "vz")
    return [Conv2D(C, 8, 3, rng=rng), MaxPool2D(2), Flatten(), Dense(8 * ((H - 2) // 2) * ((W - 2) // 2), outputs,
                                                                     rng=rng)]


def lenet(input_shape, outputs, rng):
    """Conv 16x3x3 (same) - ReLU - pool 2, Conv 32x3x3 (same) - ReLU - pool 2, Dense 128, ReLU, Dense."""
    C, H, W = _image_shape(input_shape, "lenet")
    flat = 32 * (H // 2 // 2) * (W // 2 // 2)
    return [Conv2D(C, 16, 3, padding=1, rng=rng), ReLU(), MaxPool2D(2),
            Conv2D(16, 32, 3, padding=1, rng=rng), ReLU(), MaxPool2D(2),
            Flatten(), Dense(flat, 128, rng=rng), ReLU(), Dense(128, outputs, rng=rng)]


def simple(input_shape, outputs, rng):
    """Conv 30x5x5, ReLU, max pool 2, Dense 100, ReLU, Dense."""
    C, H, W = _image_shape(input_shape, "simple")
    flat = 30 * ((H - 4) // 2) * ((W - 4) // 2)
    return [Conv2D(C, 30, 5, rng=rng), ReLU(), MaxPool2D(2), Flatten(),
            Dense(flat, 100, rng=rng), ReLU(), Dense(100, outputs, rng=rng)]


def colour(input_shape, outputs, rng, batch_norm=False):
    """Three conv blocks for small colour images (32x32x3): Conv 3x3 (same) 16, 32, 64 channels,
    each followed by [BatchNorm2D,] ReLU and max pool 2; then Dense 128, ReLU, Dense."""
    C, H, W = _image_shape(input_shape, "colour")
    layers, channels = [], C
    for width in (16, 32, 64):
        layers.append(Conv2D(channels, width, 3, padding=1, rng=rng))
        layers += [BatchNorm2D(width)] if batch_norm else []
        layers += [ReLU(), MaxPool2D(2)]
        channels = width
    flat = 64 * (H // 8) * (W // 8)
    if flat == 0:
        raise GlassnetError(f"architecture 'colour' needs images of at least 8x8. Received: {H}x{W}")
    return layers + [Flatten(), Dense(flat, 128, rng=rng), ReLU(), Dense(128, outputs, rng=rng)]


def colour_bn(input_shape, outputs, rng):
    """``colour`` with BatchNorm2D after every convolution."""
    return colour(input_shape, outputs, rng, batch_norm=True)


ARCHITECTURES = {"mlp": mlp, "linear": linear, "xor": xor_net, "seed": seed, "vz": vz, "lenet": lenet,
                 "simple": simple, "colour": colour, "colour_bn": colour_bn}

# per dataset: architecture, loss, optimizer, learning rate, epochs, batch size
DEFAULTS = {
    "xor": dict(arch="xor", loss="mse", optimizer="sgd", lr=2.0, epochs=3000, batch_size=4, seed=1),
    "iris": dict(arch="linear", loss="softmax_cross_entropy", optimizer="adam", lr=0.05, epochs=100, batch_size=16),
    "boston": dict(arch="mlp", loss="mse", optimizer="adam", lr=0.01, epochs=150, batch_size=16),
    "digits": dict(arch="lenet", loss="softmax_cross_entropy", optimizer="adam", lr=0.001, epochs=24,
                   batch_size=16),
    "mnist5k": dict(arch="lenet", loss="softmax_cross_entropy", optimizer="adam", lr=0.001, epochs=10,
                    batch_size=32),
    "fashion_mnist": dict(arch="simple", loss="softmax_cross_entropy", optimizer="adam", lr=0.001, epochs=5,
                          batch_size=100),
    "folder": dict(arch="colour", loss="softmax_cross_entropy", optimizer="adam", lr=0.001, epochs=10,
                   batch_size=32),
    "shapes": dict(arch="colour", loss="softmax_cross_entropy", optimizer="adam", lr=0.001, epochs=25,
                   batch_size=32, augment="shift,flip,rotate"),
    "mnist": dict(arch="lenet", loss="softmax_cross_entropy", optimizer="adam", lr=0.001, epochs=3,
                  batch_size=64),
}


def build(arch, input_shape, outputs, seed=0, dtype=np.float64):
    """A Sequential for architecture ``arch`` with weights drawn from ``seed``."""
    if arch not in ARCHITECTURES:
        raise GlassnetError(f"unknown architecture {arch!r}; available: {', '.join(ARCHITECTURES)}")
    rng = np.random.default_rng(seed)
    model = Sequential(ARCHITECTURES[arch](tuple(input_shape), outputs, rng), dtype=dtype)
    model.metadata["arch"] = arch
    model.metadata["input_shape"] = list(input_shape)
    return model


def build_for_dataset(dataset, settings):
    """A fresh model for ``dataset`` (a ``gn.datasets.Dataset``) with ``settings`` (arch, seed, dtype, loss, ...).

    The model's metadata records what ``predict`` needs later: the dataset, its class names
    and preprocessing, the loss, and the training settings.
    """
    outputs = dataset.y_train.shape[1] if dataset.y_train.ndim == 2 else len(dataset.class_names)
    model = build(settings["arch"], dataset.input_shape, outputs, seed=settings["seed"], dtype=settings["dtype"])
    model.metadata.update({"dataset": dataset.name, "task": dataset.task, "class_names": dataset.class_names,
                           "preprocessing": dataset.preprocessing, "loss": settings["loss"],
                           "training": dict(settings)})
    return model
