"""The large ImageNet architectures people import and look inside: VGG-16, ResNet-50, MobileNetV2.

Each is laid out as torchvision lays it out (Simonyan & Zisserman 2014; He et al. 2015, ResNet v1.5 with
the stride on the 3x3 convolution; Sandler et al. 2018), so ``gn.to_torch`` of one is torchvision's net
with glassnet's weights, and at 224x224 inputs the shapes are torchvision's. Built with random weights
(``seed``): ``glassnet bench --model resnet50`` times them against ONNX Runtime and PyTorch.

Each builder takes (input_shape (C, H, W), outputs, rng) and returns a ``Model``, like the presets.
"""
from ..errors import GlassnetError
from ..nn.layers import (Add, BatchNorm2D, Conv2D, Dense, Dropout, Flatten, GlobalAvgPool2D, MaxPool2D, ReLU,
                         ReLU6)
from ..nn.symbolic import Input
from .model import Model

VGG16_STAGES = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))      # (channels, 3x3 convolutions) per stage
RESNET50_STAGES = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))  # (width, bottleneck blocks, stride)
# MobileNetV2's inverted residual stages: (expansion t, channels c, blocks n, first stride s)
MOBILENET_V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                       (6, 320, 1, 1))


def _image(input_shape, arch, smallest):
    if len(input_shape) != 3:
        raise GlassnetError(f"architecture '{arch}' needs image inputs (C, H, W). Received: {tuple(input_shape)}")
    C, H, W = input_shape
    if H < smallest or W < smallest:
        raise GlassnetError(f"architecture '{arch}' needs images of at least {smallest}x{smallest} "
                            f"(it halves them {smallest.bit_length() - 1} times). Received: {H}x{W}")
    return C, H, W


def vgg16(input_shape, outputs, rng):
    """VGG-16: five stages of 3x3 convolutions (padding 1) with ReLU, each closed by a 2x2 max pool
    (64, 128, 256, 512, 512 channels; 2, 2, 3, 3, 3 convolutions), then Dense 4096, ReLU, Dropout,
    Dense 4096, ReLU, Dropout, Dense ``outputs``. 224x224 -> 7x7x512 = 25,088 features (torchvision's
    adaptive pool to 7x7 is then the identity; at other sizes the Dense layer takes what the stages give)."""
    C, H, W = _image(input_shape, "vgg16", 32)
    x = Input((C, H, W))
    h, channels = x, C
    for width, convolutions in VGG16_STAGES:
        for _ in range(convolutions):
            h = ReLU()(Conv2D(channels, width, 3, padding=1, rng=rng)(h))
            channels = width
        h = MaxPool2D(2)(h)
    h = Flatten()(h)
    for _ in range(2):
        h = Dropout(0.5, rng=rng)(ReLU()(Dense(h.shape[0], 4096, rng=rng)(h)))
    return Model(x, Dense(4096, outputs, rng=rng)(h))


def _conv_bn(h, channels, kernel, stride, rng, groups=1):
    """Convolution without bias (padding kernel // 2) and BatchNorm."""
    conv = Conv2D(h.shape[0], channels, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False,
                  rng=rng)
    return BatchNorm2D(channels)(conv(h))


def bottleneck(x, width, stride, rng):
    """ResNet-50's block: 1x1 down to ``width`` channels, 3x3 (with the stride), 1x1 up to 4 * width,
    each with BatchNorm (ReLU after the first two); added to the input (through a strided 1x1
    convolution with BatchNorm when the shape changes), then ReLU."""
    h = ReLU()(_conv_bn(x, width, 1, 1, rng))
    h = ReLU()(_conv_bn(h, width, 3, stride, rng))
    h = _conv_bn(h, 4 * width, 1, 1, rng)
    shortcut = x
    if stride != 1 or x.shape[0] != 4 * width:
        shortcut = _conv_bn(x, 4 * width, 1, stride, rng)
    return ReLU()(Add()([h, shortcut]))


def resnet50(input_shape, outputs, rng):
    """ResNet-50: a 7x7 stride-2 stem (64 channels, BatchNorm, ReLU) and a 3x3 stride-2 max pool, then
    bottleneck blocks [3, 4, 6, 3] of widths 64, 128, 256, 512 (2,048 channels out), global average pooling
    and a Dense head. 224x224 -> 56, 28, 14, 7."""
    C, H, W = _image(input_shape, "resnet50", 32)
    x = Input((C, H, W))
    h = ReLU()(_conv_bn(x, 64, 7, 2, rng))
    h = MaxPool2D(3, stride=2, padding=1)(h)
    for width, blocks, stride in RESNET50_STAGES:
        for block in range(blocks):
            h = bottleneck(h, width, stride if block == 0 else 1, rng)
    return Model(x, Dense(2048, outputs, rng=rng)(GlobalAvgPool2D()(h)))


def inverted_residual(x, channels, stride, expansion, rng):
    """MobileNetV2's block: a 1x1 convolution widening ``expansion`` times (none when it is 1), a 3x3
    depthwise convolution (with the stride), each with BatchNorm and ReLU6, and a linear 1x1 convolution
    to ``channels`` with BatchNorm; added to the input when stride is 1 and the channels agree."""
    hidden = x.shape[0] * expansion
    h = x if expansion == 1 else ReLU6()(_conv_bn(x, hidden, 1, 1, rng))
    h = ReLU6()(_conv_bn(h, hidden, 3, stride, rng, groups=hidden))
    h = _conv_bn(h, channels, 1, 1, rng)
    return Add()([x, h]) if stride == 1 and x.shape[0] == channels else h


def mobilenet_v2(input_shape, outputs, rng):
    """MobileNetV2 (width 1.0): a 3x3 stride-2 stem (32 channels, BatchNorm, ReLU6), the 17 inverted
    residual blocks of ``MOBILENET_V2_STAGES``, a 1x1 convolution to 1,280 channels (BatchNorm, ReLU6),
    global average pooling, Dropout 0.2 and a Dense head. 224x224 -> 112, 56, 28, 14, 7."""
    C, H, W = _image(input_shape, "mobilenet_v2", 32)
    x = Input((C, H, W))
    h = ReLU6()(_conv_bn(x, 32, 3, 2, rng))
    for expansion, channels, blocks, stride in MOBILENET_V2_STAGES:
        for block in range(blocks):
            h = inverted_residual(h, channels, stride if block == 0 else 1, expansion, rng)
    h = ReLU6()(_conv_bn(h, 1280, 1, 1, rng))
    h = Dropout(0.2, rng=rng)(GlobalAvgPool2D()(h))
    return Model(x, Dense(1280, outputs, rng=rng)(h))


ARCHITECTURES = {"vgg16": vgg16, "resnet50": resnet50, "mobilenet_v2": mobilenet_v2}
IMAGE_SHAPE = (3, 224, 224)
CLASSES = 1000
