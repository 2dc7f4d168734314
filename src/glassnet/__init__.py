"""glassnet: a convolutional neural network library in NumPy, every pass written out by hand.

The package is a house of wings, each a sub-package whose ``__init__`` says what it holds and
which wings it may import; dependencies run one way (tests/test_architecture.py checks it):

    foundations (errors, backend, validation, atomic, archive)
      <- nn (layers, losses, optimizers)        <- data (data sets, images, preprocessing)
      <- training (the fit loop, checkpoints)   <- models (Sequential, presets)
      <- files (model files, converters)        <- see (trace, explain, plots, gradcheck)
      <- apps (the command line, studio, sweeps, benchmark; loaded only when run)

This module is the door: every ``gn.*`` name is imported here.

Foundations import: foundations only (errors <- backend <- validation; atomic <- archive).
"""
import sys

from .errors import GlassnetError, GradcheckError, ShapeError, TrainingDivergedError
from .nn import (Add, AvgPool2D, BatchNorm2D, Concatenate, Conv2D, Dense, Dropout, Flatten, GlobalAvgPool2D,
                 GlobalMaxPool2D, Identity, Input, Layer, LeakyReLU, MaxPool2D, Multiply, ReLU, Sigmoid, Softmax,
                 SymbolicTensor, Tanh, ConvTranspose2D, LRN, ReLU6, ELU, SELU, PReLU, Softplus, Softsign, SiLU,
                 GELU, Hardsigmoid, Hardswish, LogSoftmax, Pad2D, Upsample2D, PixelShuffle, ChannelShuffle, Rescaling,
                 Reshape, MSE, BinaryCrossEntropy, CrossEntropy, Loss, SoftmaxCrossEntropy,
                 SGD, Adam, AdamW, RMSprop, Adagrad, Optimizer, decay_weights_only, init)
from .data import Augment, ImageSet, datasets, preprocessing
from .training import (BatchEnd, Callback, EarlyStopping, EpochEnd, StopTraining, clip_grad_norm, clip_grad_value,
                       schedules)
from .models import Model, Sequential, presets
from .files import (export_onnx, from_keras, from_torch, import_onnx, load, load_checkpoint, save, to_keras,
                    to_torch)
from .see import Trace, attribute, compare, explain, gradcheck, plots, trace, visualize_filter
from . import files, nn, see

__version__ = "0.1.0"

# Import paths from before the wings (glassnet 0.1), kept working: the README's changelog lists every move.
MOVED = {"glassnet.layers": "glassnet.nn.layers", "glassnet.datasets": "glassnet.data.datasets",
         "glassnet.interop": "glassnet.files", "glassnet.interop.compare": "glassnet.see.compare",
         "glassnet.interop.onnx_format": "glassnet.files.onnx_format",
         "glassnet.interop.torch_convert": "glassnet.files.torch_convert",
         "glassnet.interop.keras_convert": "glassnet.files.keras_convert", "glassnet.trace": "glassnet.see.trace"}
for _name in list(sys.modules):   # the submodules too: glassnet.layers.conv, glassnet.datasets.folder, ...
    for _old, _new in (("glassnet.layers.", "glassnet.nn.layers."), ("glassnet.datasets.", "glassnet.data.datasets.")):
        if _name.startswith(_new):
            MOVED[_old + _name[len(_new):]] = _name
for _old, _new in MOVED.items():
    sys.modules.setdefault(_old, sys.modules[_new])
layers, interop = nn.layers, files
del _name, _old, _new
