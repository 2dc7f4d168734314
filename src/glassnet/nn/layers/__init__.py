"""glassnet layers: each a forward and a hand-written backward."""
from .activations import Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .base import Layer
from .conv import Conv2D
from .conv_transpose import ConvTranspose2D
from .lrn import LRN
from .modern_activations import (ELU, GELU, SELU, Hardsigmoid, Hardswish, LogSoftmax, PReLU, ReLU6, SiLU, Softplus,
                                 Softsign)
from .resampling import ChannelShuffle, Pad2D, PixelShuffle, Upsample2D
from .dense import Dense, Flatten
from .merge import Add, Concatenate, Multiply
from .pooling import AvgPool2D, GlobalAvgPool2D, GlobalMaxPool2D, MaxPool2D
from .regularization import BatchNorm2D, Dropout
from .rescaling import Rescaling, Reshape

# every layer a model file or checkpoint may name, by type name: files are read against this allow-list
LAYER_TYPES = {layer.__name__: layer for layer in (
    Conv2D, MaxPool2D, AvgPool2D, Flatten, Dense, Dropout, BatchNorm2D, ReLU, LeakyReLU, Sigmoid, Tanh, Identity,
    Softmax, Add, Concatenate, Multiply, GlobalAvgPool2D, GlobalMaxPool2D,
    ConvTranspose2D, LRN, ReLU6, ELU, SELU, PReLU, Softplus, Softsign, SiLU, GELU, Hardsigmoid, Hardswish,
    LogSoftmax, Pad2D, Upsample2D, PixelShuffle, ChannelShuffle, Rescaling, Reshape)}

__all__ = [
    "Layer", "Conv2D", "MaxPool2D", "AvgPool2D", "Flatten", "Dense", "Dropout", "BatchNorm2D",
    "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Identity", "Softmax",
    "Add", "Concatenate", "Multiply", "GlobalAvgPool2D", "GlobalMaxPool2D",
    "ConvTranspose2D", "LRN", "ReLU6", "ELU", "SELU", "PReLU", "Softplus", "Softsign", "SiLU", "GELU",
    "Hardsigmoid", "Hardswish", "LogSoftmax", "Pad2D", "Upsample2D", "PixelShuffle", "ChannelShuffle",
    "Rescaling", "Reshape",
]
