"""PyTorch ``nn.Sequential`` <-> glassnet ``Sequential``, weights copied, layouts the same.

NCHW activations and (out, in, kh, kw) kernels are PyTorch's layouts too; the one change is
Dense's weight: glassnet keeps (in, out), ``nn.Linear`` (out, in).
"""
import numpy as np

from ..errors import GlassnetError
from ..nn.layers import (AvgPool2D, BatchNorm2D, Conv2D, Dense, Dropout, Flatten, Identity, LeakyReLU,
                         MaxPool2D, ReLU, Sigmoid, Softmax, Tanh)
from ..models.sequential import Sequential


def _torch():
    try:
        import torch
    except ImportError:
        raise GlassnetError("converting to or from PyTorch needs torch: pip install torch") from None
    return torch


def _tensor(torch, array):
    return torch.nn.Parameter(torch.from_numpy(np.array(array, copy=True)))


def to_torch(model):
    """A ``torch.nn.Sequential`` computing what ``model`` computes, with copies of its weights
    (same dtype; evaluation mode matches glassnet's after ``model.eval()``)."""
    torch = _torch()
    nn = torch.nn
    modules = []
    for index, layer in enumerate(model.layers):
        kind = type(layer)
        if kind is Conv2D:
            top, bottom, left, right = layer.pads
            if top == bottom and left == right:
                padding = (top, left)
            elif layer.padding == "same":
                padding = "same"
            else:
                raise GlassnetError(f"to_torch: layer {index} has asymmetric padding {layer.pads}, which "
                                    "nn.Conv2d cannot express")
            module = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, padding,
                               bias=layer.use_bias)
            module.weight = _tensor(torch, layer.params["weight"])
        elif kind is Dense:
            module = nn.Linear(layer.in_features, layer.out_features, bias=layer.use_bias)
            module.weight = _tensor(torch, layer.params["weight"].T)            # (in, out) -> (out, in)
        elif kind is MaxPool2D:
            module = nn.MaxPool2d(layer.kernel_size, layer.stride, layer.padding)
        elif kind is AvgPool2D:
            module = nn.AvgPool2d(layer.kernel_size, layer.stride, layer.padding, count_include_pad=True)
        elif kind is BatchNorm2D:
            module = nn.BatchNorm2d(layer.num_features, eps=layer.eps, momentum=layer.momentum)
            module.weight = _tensor(torch, layer.params["weight"])
            module.running_mean = torch.from_numpy(layer.buffers["running_mean"].copy())
            module.running_var = torch.from_numpy(layer.buffers["running_var"].copy())
        elif kind is LeakyReLU:
            module = nn.LeakyReLU(layer.alpha)
        elif kind is Dropout:
            module = nn.Dropout(layer.p)
        elif kind is Softmax:
            module = nn.Softmax(dim=1)
        elif kind in SIMPLE_TO_TORCH:
            module = getattr(nn, SIMPLE_TO_TORCH[kind])()
        else:
            raise GlassnetError(f"to_torch: layer {index} ({kind.__name__}) has no PyTorch equivalent here")
        if "bias" in layer.params and getattr(module, "bias", None) is not None:
            module.bias = _tensor(torch, layer.params["bias"])
        modules.append(module)
    twin = nn.Sequential(*modules).to(torch.float64 if model.dtype == np.float64 else torch.float32)
    return twin.train(model.training)


SIMPLE_TO_TORCH = {ReLU: "ReLU", Sigmoid: "Sigmoid", Tanh: "Tanh", Flatten: "Flatten", Identity: "Identity"}
SIMPLE_FROM_TORCH = {"ReLU": ReLU, "Sigmoid": Sigmoid, "Tanh": Tanh, "Identity": Identity}


def from_torch(module, input_shape=None):
    """A glassnet ``Sequential`` from a ``torch.nn.Sequential`` of Conv2d, MaxPool2d, AvgPool2d,
    Flatten, Linear, BatchNorm2d, Dropout and activations; anything else is refused by name.

    input_shape : (C, H, W) of one sample, recorded in the model's metadata (optional).
    """
    torch = _torch()
    nn = torch.nn
    if not isinstance(module, nn.Sequential):
        raise GlassnetError(f"from_torch: expected a torch.nn.Sequential. Received: {type(module).__name__}")
    layers, dtype = [], None
    for name, child in module.named_children():
        kind = type(child).__name__
        where = f"from_torch: module {name} ({kind})"
        for parameter in child.parameters(recurse=False):
            dtype = dtype or parameter.dtype
        if isinstance(child, nn.Conv2d):
            if child.groups != 1 or tuple(child.dilation) != (1, 1) or child.padding_mode != "zeros":
                raise GlassnetError(f"{where}: only groups=1, dilation=1 and zero padding are supported")
            layer = Conv2D(child.in_channels, child.out_channels, tuple(child.kernel_size), tuple(child.stride),
                           child.padding if isinstance(child.padding, str) else tuple(child.padding),
                           bias=child.bias is not None)
            layer.params["weight"] = _numpy(child.weight)
        elif isinstance(child, nn.Linear):
            layer = Dense(child.in_features, child.out_features, bias=child.bias is not None)
            layer.params["weight"] = _numpy(child.weight).T.copy()               # (out, in) -> (in, out)
        elif isinstance(child, (nn.MaxPool2d, nn.AvgPool2d)):
            if child.ceil_mode or getattr(child, "dilation", 1) not in (1, (1, 1)) or getattr(
                    child, "return_indices", False) or getattr(child, "divisor_override", None):
                raise GlassnetError(f"{where}: ceil_mode, dilation, return_indices and divisor_override "
                                    "are not supported")
            if isinstance(child, nn.AvgPool2d) and not child.count_include_pad and child.padding not in (0, (0, 0)):
                raise GlassnetError(f"{where}: padding with count_include_pad=False is not supported")
            pool = MaxPool2D if isinstance(child, nn.MaxPool2d) else AvgPool2D
            layer = pool(child.kernel_size, child.stride, child.padding)
        elif isinstance(child, nn.Flatten):
            if child.start_dim != 1 or child.end_dim != -1:
                raise GlassnetError(f"{where}: only Flatten(start_dim=1, end_dim=-1) is supported")
            layer = Flatten()
        elif isinstance(child, nn.BatchNorm2d):
            if not child.affine or not child.track_running_stats:
                raise GlassnetError(f"{where}: needs affine=True and track_running_stats=True")
            layer = BatchNorm2D(child.num_features, eps=child.eps, momentum=child.momentum)
            layer.params["weight"] = _numpy(child.weight)
            layer.buffers["running_mean"] = _numpy(child.running_mean)
            layer.buffers["running_var"] = _numpy(child.running_var)
        elif isinstance(child, nn.Softmax):
            if child.dim not in (1, -1):
                raise GlassnetError(f"{where}: only dim=1 is supported. Received: dim={child.dim}")
            layer = Softmax()
        elif isinstance(child, nn.LeakyReLU):
            layer = LeakyReLU(child.negative_slope)
        elif isinstance(child, nn.Dropout):
            layer = Dropout(child.p)
        elif kind in SIMPLE_FROM_TORCH:
            layer = SIMPLE_FROM_TORCH[kind]()
        else:
            raise GlassnetError(f"{where} has no glassnet equivalent")
        if "bias" in layer.params and getattr(child, "bias", None) is not None:
            layer.params["bias"] = _numpy(child.bias)
        layers.append(layer)
    model = Sequential(layers, dtype=np.float64 if dtype == torch.float64 else np.float32)
    if input_shape is not None:
        model.metadata["input_shape"] = list(input_shape)
    return model.train(module.training)


def _numpy(tensor):
    return tensor.detach().cpu().numpy().copy()
