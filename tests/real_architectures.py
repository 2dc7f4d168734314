"""Hand-written PyTorch versions of the architectures the layers of real architectures exist for:
a small MobileNetV2, a ShuffleNet-v2 unit, a U-Net-style decoder, a DCGAN generator and EfficientNet's
MBConv blocks (squeeze-and-excitation). Each
``make()`` returns (module, one sample's input shape)."""
import torch
from torch import nn


def conv_bn(cin, cout, kernel, stride=1, groups=1, activation=True):
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, nn.ReLU6()) if activation else nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2's block: expand 1x1, depthwise 3x3, project 1x1 (linear); a shortcut when shapes agree."""

    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = cin * expand
        self.shortcut = stride == 1 and cin == cout
        self.body = nn.Sequential(conv_bn(cin, hidden, 1), conv_bn(hidden, hidden, 3, stride, groups=hidden),
                                  conv_bn(hidden, cout, 1, activation=False))

    def forward(self, x):
        return x + self.body(x) if self.shortcut else self.body(x)


class MobileNetV2(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.features = nn.Sequential(conv_bn(3, 8, 3, 2), InvertedResidual(8, 8, 1, 1), InvertedResidual(8, 12, 2, 6),
                                      InvertedResidual(12, 12, 1, 6), conv_bn(12, 32, 1))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(32, classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


class WrittenShuffle(nn.Module):
    """A channel shuffle written out, as torchvision's ShuffleNet writes it (and as any exporter can)."""

    def __init__(self, groups):
        super().__init__()
        self.groups = groups

    def forward(self, x):
        n, c, h, w = x.shape
        return x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleUnit(nn.Module):
    """ShuffleNet-v2's downsampling unit: two branches (depthwise 3x3 stride 2 in each), concatenated, shuffled
    (by nn.ChannelShuffle, or written out with ``written=True``: PyTorch's TorchScript exporter has no
    channel_shuffle)."""

    def __init__(self, cin=8, cout=16, written=False):
        super().__init__()
        half = cout // 2
        self.branch1 = nn.Sequential(nn.Conv2d(cin, cin, 3, 2, 1, groups=cin, bias=False), nn.BatchNorm2d(cin),
                                     nn.Conv2d(cin, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU())
        self.branch2 = nn.Sequential(nn.Conv2d(cin, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(),
                                     nn.Conv2d(half, half, 3, 2, 1, groups=half, bias=False), nn.BatchNorm2d(half),
                                     nn.Conv2d(half, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU())
        self.shuffle = WrittenShuffle(2) if written else nn.ChannelShuffle(2)

    def forward(self, x):
        return self.shuffle(torch.cat([self.branch1(x), self.branch2(x)], dim=1))


class UNetDecoder(nn.Module):
    """An encoder step down and a decoder step up (transposed conv, skip concatenation), then a
    bilinear upsampling and a 1x1 head."""

    def __init__(self):
        super().__init__()
        self.enc1 = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.enc2 = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU())
        self.up = nn.ConvTranspose2d(16, 8, 2, stride=2)
        self.dec = nn.Sequential(nn.Conv2d(16, 8, 3, padding=1), nn.ReLU())
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.head = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        skip = self.enc1(x)
        return self.head(self.upsample(self.dec(torch.cat([self.up(self.enc2(skip)), skip], dim=1))))


class SqueezeExcitation(nn.Module):
    """torchvision's squeeze-and-excitation: (N, C, 1, 1) means through two 1x1 convolutions, a sigmoid
    gate multiplied into every pixel (a broadcast product)."""

    def __init__(self, channels, squeezed):
        super().__init__()
        self.pool, self.act = nn.AdaptiveAvgPool2d(1), nn.SiLU()
        self.reduce, self.expand = nn.Conv2d(channels, squeezed, 1), nn.Conv2d(squeezed, channels, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.expand(self.act(self.reduce(self.pool(x)))))


class MBConv(nn.Module):
    """EfficientNet's block: expand 1x1, depthwise, squeeze-and-excitation, project 1x1; SiLU throughout."""

    def __init__(self, cin, cout, stride, expand, kernel=3):
        super().__init__()
        hidden = cin * expand
        self.shortcut = stride == 1 and cin == cout
        self.body = nn.Sequential(
            nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.SiLU(),
            nn.Conv2d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False), nn.BatchNorm2d(hidden),
            nn.SiLU(), SqueezeExcitation(hidden, max(1, cin // 4)),
            nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return x + self.body(x) if self.shortcut else self.body(x)


class EfficientNetMini(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.SiLU())
        self.blocks = nn.Sequential(MBConv(8, 8, 1, 1), MBConv(8, 12, 2, 4, kernel=5), MBConv(12, 12, 1, 4))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(12, classes))

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)))


def dcgan_generator(latent=16):
    """DCGAN's generator: (latent, 1, 1) -> (3, 16, 16) through transposed convolutions."""
    return nn.Sequential(nn.ConvTranspose2d(latent, 32, 4, 1, 0, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
                         nn.ConvTranspose2d(32, 16, 4, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.ConvTranspose2d(16, 3, 4, 2, 1, bias=False), nn.Tanh())


ARCHITECTURES = {
    "mobilenet_v2": lambda: (MobileNetV2(), (3, 32, 32)),
    "shufflenet_v2_unit": lambda: (ShuffleUnit(), (8, 16, 16)),
    "shufflenet_v2_unit_written": lambda: (ShuffleUnit(written=True), (8, 16, 16)),   # x.view(...) in forward
    "unet_decoder": lambda: (UNetDecoder(), (3, 16, 16)),
    "dcgan_generator": lambda: (dcgan_generator(), (16, 1, 1)),
    "efficientnet_mini": lambda: (EfficientNetMini(), (3, 16, 16)),
}
