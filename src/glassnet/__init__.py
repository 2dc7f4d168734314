"""glassnet: a convolutional neural network library in NumPy, every pass written out by hand."""
from . import init, preprocessing
from .augment import Augment
from .callbacks import BatchEnd, Callback, EpochEnd, StopTraining
from .errors import GlassnetError, GradcheckError, ShapeError, TrainingDivergedError
from .gradcheck import gradcheck
from .imageset import ImageSet
from .layers import (AvgPool2D, BatchNorm2D, Conv2D, Dense, Dropout, Flatten, Identity, Layer,
                     LeakyReLU, MaxPool2D, ReLU, Sigmoid, Softmax, Tanh)
from .losses import MSE, BinaryCrossEntropy, CrossEntropy, Loss, SoftmaxCrossEntropy
from .optim import SGD, Adam, Optimizer
from .sequential import Sequential
from .serialization import load, save
from .checkpoint import load_checkpoint
from .trace import Trace, trace
from .interop.compare import compare
from .interop.onnx_format import export_onnx, import_onnx
from .interop.keras_convert import from_keras, to_keras
from .interop.torch_convert import from_torch, to_torch
from . import explain, plots
from . import datasets, presets

__version__ = "0.1.0"
