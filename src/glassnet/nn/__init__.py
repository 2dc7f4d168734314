"""What a network is made of: layers, losses, optimizers and weight initialisation.

- ``layers/``: every layer, each a forward and a hand-written backward (``LAYER_TYPES`` lists the
  ones a file may name);
- ``losses.py``: losses, each returning the batch mean and dL/d(prediction);
- ``optim.py``: optimizers, generic over a model's ``(params, grads)`` pairs;
- ``init.py``: weight initialisers;
- ``symbolic.py``: ``Input`` and the symbolic values layers are called on to build a graph model.

Imports: foundations (errors, backend, validation).
"""
from . import init
from .layers import (LAYER_TYPES, Add, AvgPool2D, BatchNorm2D, Concatenate, Conv2D, Dense, Dropout, Flatten,
                     GlobalAvgPool2D, GlobalMaxPool2D, Identity, Layer, LeakyReLU, MaxPool2D, Multiply, ReLU,
                     Sigmoid, Softmax, Tanh, ConvTranspose2D, LRN, ReLU6, ELU, SELU, PReLU, Softplus, Softsign,
                     SiLU, GELU, Hardsigmoid, Hardswish, LogSoftmax, Pad2D, Upsample2D, PixelShuffle, ChannelShuffle,
                     Rescaling, Reshape)
from .losses import MSE, BinaryCrossEntropy, CrossEntropy, Loss, SoftmaxCrossEntropy
from .optim import SGD, Adam, Optimizer, decay_weights_only
from .optim_adaptive import Adagrad, AdamW, RMSprop
from .symbolic import Input, SymbolicTensor
