"""Named architectures (used by the ``glassnet`` command) and each dataset's defaults.

A chain architecture returns its list of layers; a graph architecture (``resnet_mini``,
``inception_mini``, ``mobilenet_mini``, and the large ones of ``imagenet.py``: ``vgg16``, ``resnet50``,
``mobilenet_v2``) returns a ``Model``.
"""
import numpy as np

from ..errors import GlassnetError
from ..nn.layers import (Add, BatchNorm2D, Concatenate, Conv2D, Dense, Flatten, GlobalAvgPool2D, MaxPool2D, ReLU,
                         ReLU6, Sigmoid, Tanh)
from ..nn.symbolic import Input
from . import imagenet
from .model import Model
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


def residual_block(x, channels, stride, rng):
    """ResNet's basic block: two 3x3 convolutions with BatchNorm, added to the input (through a 1x1
    convolution with BatchNorm when the shape changes), then ReLU."""
    conv = lambda c_in, c_out, k, s: Conv2D(c_in, c_out, k, stride=s, padding=k // 2, bias=False, rng=rng)  # noqa
    h = ReLU()(BatchNorm2D(channels)(conv(x.shape[0], channels, 3, stride)(x)))
    h = BatchNorm2D(channels)(conv(channels, channels, 3, 1)(h))
    shortcut = x
    if stride != 1 or x.shape[0] != channels:
        shortcut = BatchNorm2D(channels)(conv(x.shape[0], channels, 1, stride)(x))
    return ReLU()(Add()([h, shortcut]))


def resnet_mini(input_shape, outputs, rng):
    """A small ResNet: a 3x3 stem (16 channels, BatchNorm, ReLU), then three residual blocks of 16, 32
    and 64 channels (the last two halve H and W, with 1x1 projection shortcuts), global average pooling
    and a Dense head. 28x28 -> 28, 14, 7."""
    C, H, W = _image_shape(input_shape, "resnet_mini")
    x = Input((C, H, W))
    h = ReLU()(BatchNorm2D(16)(Conv2D(C, 16, 3, padding=1, bias=False, rng=rng)(x)))
    for channels, stride in ((16, 1), (32, 2), (64, 2)):
        h = residual_block(h, channels, stride, rng)
    return Model(x, Dense(64, outputs, rng=rng)(GlobalAvgPool2D()(h)))


def inception_module(x, width, rng):
    """GoogLeNet's module, small: 1x1, 1x1 then 3x3, 3x3 max pool then 1x1, each with ReLU, joined on the
    channels (4 * width channels out)."""
    def conv(h, c_out, k):
        return ReLU()(Conv2D(h.shape[0], c_out, k, padding=k // 2, rng=rng)(h))
    one = conv(x, width, 1)
    three = conv(conv(x, width, 1), 2 * width, 3)
    pool = conv(MaxPool2D(3, stride=1, padding=1)(x), width, 1)
    return Concatenate(axis=1)([one, three, pool])


def inception_mini(input_shape, outputs, rng):
    """A small Inception net: a 3x3 stem (16 channels, ReLU, max pool 2), two inception modules (32 and
    64 channels out) with a max pool 2 between them, global average pooling and a Dense head."""
    C, H, W = _image_shape(input_shape, "inception_mini")
    if H < 4 or W < 4:
        raise GlassnetError(f"architecture 'inception_mini' needs images of at least 4x4. Received: {H}x{W}")
    x = Input((C, H, W))
    h = MaxPool2D(2)(ReLU()(Conv2D(C, 16, 3, padding=1, rng=rng)(x)))
    h = MaxPool2D(2)(inception_module(h, 8, rng))
    h = inception_module(h, 16, rng)
    return Model(x, Dense(64, outputs, rng=rng)(GlobalAvgPool2D()(h)))


def inverted_residual(x, channels, stride, expand, rng):
    """MobileNetV2's block: a 1x1 convolution widening to ``expand`` times the channels (BatchNorm, ReLU6),
    a 3x3 depthwise convolution (one filter per channel: groups = channels; BatchNorm, ReLU6), a linear 1x1
    convolution down to ``channels`` (BatchNorm); added to the input when the shapes agree."""
    hidden = x.shape[0] * expand
    h = ReLU6()(BatchNorm2D(hidden)(Conv2D(x.shape[0], hidden, 1, bias=False, rng=rng)(x)))
    h = ReLU6()(BatchNorm2D(hidden)(Conv2D(hidden, hidden, 3, stride=stride, padding=1, groups=hidden, bias=False,
                                           rng=rng)(h)))
    h = BatchNorm2D(channels)(Conv2D(hidden, channels, 1, bias=False, rng=rng)(h))
    return Add()([x, h]) if stride == 1 and x.shape[0] == channels else h


def mobilenet_mini(input_shape, outputs, rng):
    """A small MobileNetV2: a 3x3 stem (16 channels, BatchNorm, ReLU6), four inverted residual blocks
    (16, 24 with stride 2, 24 with a shortcut, 32 with stride 2; expansion 4), a 1x1 convolution to 64
    channels (BatchNorm, ReLU6), global average pooling and a Dense head. 28x28 -> 28, 14, 7."""
    C, H, W = _image_shape(input_shape, "mobilenet_mini")
    x = Input((C, H, W))
    h = ReLU6()(BatchNorm2D(16)(Conv2D(C, 16, 3, padding=1, bias=False, rng=rng)(x)))
    for channels, stride in ((16, 1), (24, 2), (24, 1), (32, 2)):
        h = inverted_residual(h, channels, stride, 4, rng)
    h = ReLU6()(BatchNorm2D(64)(Conv2D(32, 64, 1, bias=False, rng=rng)(h)))
    return Model(x, Dense(64, outputs, rng=rng)(GlobalAvgPool2D()(h)))


ARCHITECTURES = {"mlp": mlp, "linear": linear, "xor": xor_net, "seed": seed, "vz": vz, "lenet": lenet,
                 "simple": simple, "colour": colour, "colour_bn": colour_bn, "resnet_mini": resnet_mini,
                 "inception_mini": inception_mini, "mobilenet_mini": mobilenet_mini, **imagenet.ARCHITECTURES}

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
    """A model (a Sequential, or a Model for a graph architecture) for ``arch`` with weights drawn from ``seed``."""
    if arch not in ARCHITECTURES:
        raise GlassnetError(f"unknown architecture {arch!r}; available: {', '.join(ARCHITECTURES)}")
    rng = np.random.default_rng(seed)
    built = ARCHITECTURES[arch](tuple(input_shape), outputs, rng)
    model = built.astype(dtype) if isinstance(built, Model) else Sequential(built, dtype=dtype)
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
