"""What a network is made of: layers, losses, optimizers and weight initialisation.

- ``layers/``: every layer, each a forward and a hand-written backward (``LAYER_TYPES`` lists the
  ones a file may name);
- ``losses.py``: losses, each returning the batch mean and dL/d(prediction);
- ``optim.py``: optimizers, generic over a model's ``(params, grads)`` pairs;
- ``init.py``: weight initialisers.

Imports: foundations (errors, backend, validation).
"""
from . import init
from .layers import (LAYER_TYPES, AvgPool2D, BatchNorm2D, Conv2D, Dense, Dropout, Flatten, Identity, Layer,
                     LeakyReLU, MaxPool2D, ReLU, Sigmoid, Softmax, Tanh)
from .losses import MSE, BinaryCrossEntropy, CrossEntropy, Loss, SoftmaxCrossEntropy
from .optim import SGD, Adam, Optimizer
