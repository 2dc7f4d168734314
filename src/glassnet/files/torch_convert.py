"""PyTorch modules <-> glassnet models, weights copied, layouts the same: ``nn.Sequential`` <->
``Sequential``; any module torch.fx can trace -> a graph ``Model`` (``torch_graph.py``); a graph
``Model`` -> a ``torch.fx.GraphModule``.

NCHW activations and (out, in, kh, kw) kernels are PyTorch's layouts too; the one change is
Dense's weight: glassnet keeps (in, out), ``nn.Linear`` (out, in).
"""
import numpy as np

from ..errors import GlassnetError
from ..nn.layers import (ELU, GELU, LRN, SELU, Add, AvgPool2D, BatchNorm2D, ChannelShuffle, Concatenate, Conv2D,
                         ConvTranspose2D, Dense, Dropout, Flatten, GlobalAvgPool2D, GlobalMaxPool2D, Hardsigmoid,
                         Hardswish, Identity, LeakyReLU, LogSoftmax, MaxPool2D, Multiply, Pad2D, PixelShuffle, PReLU,
                         ReLU, ReLU6, Rescaling, Reshape, Sigmoid, SiLU, Softmax, Softplus, Softsign, Tanh, Upsample2D)
from ..models.sequential import Sequential
from .torch_fixed import fixed_module, is_fixed_module, layer_of_fixed_module


def _torch():
    try:
        import torch
    except ImportError:
        raise GlassnetError("converting to or from PyTorch needs torch: pip install torch") from None
    return torch


def _tensor(torch, array):
    return torch.nn.Parameter(torch.from_numpy(np.array(array, copy=True)))


def to_torch(model):
    """A PyTorch module computing what ``model`` computes, with copies of its weights (same dtype;
    evaluation mode matches glassnet's after ``model.eval()``): a ``torch.nn.Sequential`` for a chain,
    a ``torch.fx.GraphModule`` for a graph (its ``.code`` shows the forward as Python)."""
    torch = _torch()
    nn = torch.nn
    modules = [_torch_module(torch, nn, layer, index) for index, layer in enumerate(model.layers)]
    if model.is_chain:
        twin = nn.Sequential(*modules)
    else:
        twin = _graph_module(torch, model, modules)
    twin = twin.to(torch.float64 if model.dtype == np.float64 else torch.float32)
    return twin.train(model.training)


def _graph_module(torch, model, modules):
    """A GraphModule: one placeholder per input, a call of each node's module (a shared layer's module
    called once per node), merges as the functions they are."""
    import operator
    graph, values = torch.fx.Graph(), []
    for index in range(model.graph.input_count):
        values.append(graph.placeholder("x" if model.graph.input_count == 1 else f"x{index}"))
    root = torch.nn.Module()
    for index, module in enumerate(modules):
        if module is not None:
            root.add_module(f"layer{index}", module)
    for index, sources in model.graph.nodes:
        layer, args = model.layers[index], [values[s] for s in sources]
        if isinstance(layer, Add):
            value = args[0]
            for other in args[1:]:
                value = graph.call_function(operator.add, (value, other))
        elif isinstance(layer, Multiply):
            value = args[0]
            for other in args[1:]:
                value = graph.call_function(operator.mul, (value, other))
        elif isinstance(layer, Concatenate):
            value = graph.call_function(torch.cat, (args,), {"dim": layer.axis})
        else:
            value = graph.call_module(f"layer{index}", (args[0],))
        values.append(value)
    outputs = [values[v] for v in model.graph.outputs]
    graph.output(outputs[0] if len(outputs) == 1 else tuple(outputs))
    return torch.fx.GraphModule(root, graph, class_name="GlassnetGraph")


def _torch_module(torch, nn, layer, index):
    """The nn.Module for one glassnet layer (None for a merge, which is a function in a graph)."""
    kind = type(layer)
    if kind in (Add, Multiply, Concatenate):
        return None
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
                           dilation=layer.dilation, groups=layer.groups, bias=layer.use_bias)
        module.weight = _tensor(torch, layer.params["weight"])
    elif kind is ConvTranspose2D:
        module = nn.ConvTranspose2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                                    layer.padding, layer.output_padding, layer.groups, layer.use_bias, layer.dilation)
        module.weight = _tensor(torch, layer.params["weight"])
    elif kind is Dense:
        module = nn.Linear(layer.in_features, layer.out_features, bias=layer.use_bias)
        module.weight = _tensor(torch, layer.params["weight"].T)            # (in, out) -> (out, in)
    elif kind in (MaxPool2D, AvgPool2D):
        module = _torch_pool(nn, layer, index)
    elif kind is BatchNorm2D:
        module = nn.BatchNorm2d(layer.num_features, eps=layer.eps, momentum=layer.momentum)
        module.weight = _tensor(torch, layer.params["weight"])
        module.running_mean = torch.from_numpy(layer.buffers["running_mean"].copy())
        module.running_var = torch.from_numpy(layer.buffers["running_var"].copy())
    elif kind is GlobalAvgPool2D:
        module = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    elif kind is GlobalMaxPool2D:
        module = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten())
    elif kind is LeakyReLU:
        module = nn.LeakyReLU(layer.alpha)
    elif kind in (Dropout, Rescaling, Reshape):
        module = fixed_module(torch, layer)
    elif kind is Softmax:
        module = nn.Softmax(dim=1)
    elif kind in (LRN, ELU, SELU, PReLU, Softplus, GELU, LogSoftmax, Pad2D, Upsample2D, PixelShuffle, ChannelShuffle):
        module = _torch_shaping_or_activation(torch, nn, layer)
    elif kind in SIMPLE_TO_TORCH:
        module = getattr(nn, SIMPLE_TO_TORCH[kind])()
    else:
        raise GlassnetError(f"to_torch: layer {index} ({kind.__name__}) has no PyTorch equivalent here")
    if "bias" in layer.params and getattr(module, "bias", None) is not None:
        module.bias = _tensor(torch, layer.params["bias"])
    return module


def _torch_pool(nn, layer, index):
    """nn.MaxPool2d / nn.AvgPool2d; asymmetric pads become an explicit pad in front (-inf for max, zeros
    counted for average), which is the same only without ceil_mode."""
    top, bottom, left, right = layer.pads
    symmetric = (top, left) == (bottom, right)
    padding = (top, left) if symmetric else 0
    if isinstance(layer, MaxPool2D):
        module = nn.MaxPool2d(layer.kernel_size, layer.stride, padding, layer.dilation, ceil_mode=layer.ceil_mode)
    else:
        module = nn.AvgPool2d(layer.kernel_size, layer.stride, padding, ceil_mode=layer.ceil_mode,
                              count_include_pad=layer.count_include_pad)
    if symmetric:
        return module
    if layer.ceil_mode or not getattr(layer, "count_include_pad", True):
        raise GlassnetError(f"to_torch: layer {index} pools with asymmetric padding {layer.pads} and ceil_mode or "
                            "count_include_pad=False, which PyTorch's pooling cannot express")
    fill = -float("inf") if isinstance(layer, MaxPool2D) else 0.0
    return nn.Sequential(nn.ConstantPad2d((left, right, top, bottom), fill), module)


def _torch_shaping_or_activation(torch, nn, layer):
    """The module of a layer that has one PyTorch module with the same arguments."""
    kind = type(layer)
    if kind is LRN:
        return nn.LocalResponseNorm(layer.size, layer.alpha, layer.beta, layer.k)
    if kind is ELU:
        return nn.ELU(layer.alpha)
    if kind is SELU:
        return nn.SELU()
    if kind is PReLU:
        module = nn.PReLU(layer.num_parameters, layer.init)
        module.weight = _tensor(torch, layer.params["weight"])
        return module
    if kind is Softplus:
        return nn.Softplus(layer.beta, layer.threshold)
    if kind is GELU:
        return nn.GELU(approximate=layer.approximate)
    if kind is LogSoftmax:
        return nn.LogSoftmax(dim=1)
    if kind is Pad2D:
        top, bottom, left, right = layer.pads
        pads = (left, right, top, bottom)                        # F.pad's order: last axis first
        if layer.mode == "constant":
            return nn.ConstantPad2d(pads, layer.value)
        return (nn.ReflectionPad2d if layer.mode == "reflect" else nn.ReplicationPad2d)(pads)
    if kind is Upsample2D:
        extra = {"align_corners": layer.align_corners} if layer.mode == "bilinear" else {}
        return nn.Upsample(scale_factor=tuple(float(s) for s in layer.scale_factor), mode=layer.mode, **extra)
    if kind is PixelShuffle:
        return nn.PixelShuffle(layer.upscale_factor)
    return nn.ChannelShuffle(layer.groups)


SIMPLE_TO_TORCH = {ReLU: "ReLU", Sigmoid: "Sigmoid", Tanh: "Tanh", Flatten: "Flatten", Identity: "Identity",
                   ReLU6: "ReLU6", Softsign: "Softsign", SiLU: "SiLU", Hardsigmoid: "Hardsigmoid",
                   Hardswish: "Hardswish"}
SIMPLE_FROM_TORCH = {"ReLU": ReLU, "Sigmoid": Sigmoid, "Tanh": Tanh, "Identity": Identity, "ReLU6": ReLU6,
                     "Softsign": Softsign, "SiLU": SiLU, "Hardsigmoid": Hardsigmoid, "Hardswish": Hardswish,
                     "SELU": SELU}


def from_torch(module, input_shape=None):
    """A glassnet model from a PyTorch module: a ``Sequential`` from a ``torch.nn.Sequential``, a graph
    ``Model`` from any module ``torch.fx.symbolic_trace`` can trace (residual additions, ``torch.cat``,
    a module called twice becomes a shared layer). Modules: Conv2d, MaxPool2d, AvgPool2d, Flatten,
    Linear, BatchNorm2d, Dropout, AdaptiveAvg/MaxPool2d(1) and activations; functions: ``+``, ``*``,
    ``torch.cat``, ``torch.flatten``, ``F.relu`` and friends, ``F.max_pool2d``/``F.avg_pool2d``,
    ``x.mean``/``x.amax`` over (2, 3); anything else is refused by name.

    input_shape : (C, H, W) of one sample: recorded in a Sequential's metadata (optional), needed for a graph.
    """
    torch = _torch()
    nn = torch.nn
    if not isinstance(module, nn.Module):
        raise GlassnetError(f"from_torch: expected a torch.nn.Module. Received: {type(module).__name__}")
    dtype = next((p.dtype for p in module.parameters()), torch.float32)
    glassnet_dtype = np.float64 if dtype == torch.float64 else np.float32
    if isinstance(module, nn.Sequential):
        layers = [_glassnet_layer(nn, child, f"from_torch: module {name} ({type(child).__name__})")
                  for name, child in module.named_children()]
        model = Sequential(layers, dtype=glassnet_dtype)
        if input_shape is not None:
            model.metadata["input_shape"] = list(input_shape)
        return model.train(module.training)
    from .torch_graph import traced_model
    return traced_model(torch, module, input_shape, glassnet_dtype).train(module.training)


def _glassnet_layer(nn, child, where):
    """The glassnet layer for one torch module (weights copied)."""
    torch = _torch()
    if is_fixed_module(torch, child):
        return layer_of_fixed_module(torch, child)
    if isinstance(child, nn.Conv2d):
        if child.padding_mode != "zeros":
            raise GlassnetError(f"{where}: padding_mode={child.padding_mode!r}: put a gn.Pad2D before a "
                                f"Conv2D instead (only zero padding is part of Conv2D)")
        layer = Conv2D(child.in_channels, child.out_channels, tuple(child.kernel_size), tuple(child.stride),
                       child.padding if isinstance(child.padding, str) else tuple(child.padding),
                       dilation=tuple(child.dilation), groups=child.groups, bias=child.bias is not None)
        layer.params["weight"] = _numpy(child.weight)
    elif isinstance(child, nn.ConvTranspose2d):
        if child.padding_mode != "zeros" or isinstance(child.padding, str):
            raise GlassnetError(f"{where}: only zero padding given as numbers is supported")
        layer = ConvTranspose2D(child.in_channels, child.out_channels, tuple(child.kernel_size), tuple(child.stride),
                                tuple(child.padding), tuple(child.output_padding), child.groups,
                                child.bias is not None, tuple(child.dilation))
        layer.params["weight"] = _numpy(child.weight)
    elif isinstance(child, nn.Linear):
        layer = Dense(child.in_features, child.out_features, bias=child.bias is not None)
        layer.params["weight"] = _numpy(child.weight).T.copy()               # (out, in) -> (in, out)
    elif isinstance(child, (nn.MaxPool2d, nn.AvgPool2d)):
        if getattr(child, "return_indices", False) or getattr(child, "divisor_override", None):
            raise GlassnetError(f"{where}: return_indices and divisor_override are not supported")
        if isinstance(child, nn.MaxPool2d):
            layer = MaxPool2D(child.kernel_size, child.stride, child.padding, child.dilation, child.ceil_mode)
        else:
            layer = AvgPool2D(child.kernel_size, child.stride, child.padding, child.ceil_mode,
                              child.count_include_pad)
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
    elif (layer := _modern_layer(nn, child, where)) is not None:
        pass
    elif isinstance(child, nn.Dropout):
        layer = Dropout(child.p)
    elif type(child).__name__ in SIMPLE_FROM_TORCH:
        layer = SIMPLE_FROM_TORCH[type(child).__name__]()
    else:
        raise GlassnetError(f"{where} has no glassnet equivalent")
    if "bias" in layer.params and getattr(child, "bias", None) is not None:
        layer.params["bias"] = _numpy(child.bias)
    return layer


def _modern_layer(nn, child, where):
    """The glassnet layer of a module added with the layers of real architectures, or None."""
    if isinstance(child, nn.LocalResponseNorm):
        return LRN(child.size, child.alpha, child.beta, child.k)
    if isinstance(child, nn.ELU):
        return ELU(child.alpha)
    if isinstance(child, nn.PReLU):
        layer = PReLU(child.num_parameters)
        layer.params["weight"] = _numpy(child.weight)
        return layer
    if isinstance(child, nn.Softplus):
        return Softplus(child.beta, child.threshold)
    if isinstance(child, nn.GELU):
        return GELU(child.approximate)
    if isinstance(child, nn.LogSoftmax):
        if child.dim not in (1, -3):
            raise GlassnetError(f"{where}: only dim=1 is supported. Received: dim={child.dim}")
        return LogSoftmax()
    if isinstance(child, nn.Hardtanh) and (child.min_val, child.max_val) == (0.0, 6.0):
        return ReLU6()
    pads = {nn.ZeroPad2d: "constant", nn.ConstantPad2d: "constant", nn.ReflectionPad2d: "reflect",
            nn.ReplicationPad2d: "replicate"}
    if type(child) in pads:
        left, right, top, bottom = child.padding
        return Pad2D((top, bottom, left, right), pads[type(child)], getattr(child, "value", 0.0))
    if isinstance(child, nn.Upsample):
        return _upsample(child.scale_factor, child.size, child.mode, child.align_corners, where)
    if isinstance(child, nn.PixelShuffle):
        return PixelShuffle(child.upscale_factor)
    if isinstance(child, nn.ChannelShuffle):
        return ChannelShuffle(child.groups)
    return None


def _upsample(scale_factor, size, mode, align_corners, where):
    """Upsample2D for nn.Upsample / F.interpolate with whole scale factors (a size is refused)."""
    if size is not None or scale_factor is None:
        raise GlassnetError(f"{where}: upsampling to a size is not supported; give scale_factor")
    factors = scale_factor if isinstance(scale_factor, (tuple, list)) else (scale_factor, scale_factor)
    if any(float(f) != int(f) or f < 1 for f in factors):
        raise GlassnetError(f"{where}: scale_factor={scale_factor}: only whole factors are supported")
    if mode not in ("nearest", "bilinear"):
        raise GlassnetError(f"{where}: mode={mode!r}: only 'nearest' and 'bilinear' are supported")
    return Upsample2D(tuple(int(f) for f in factors), mode, bool(align_corners) if mode == "bilinear" else False)


def _numpy(tensor):
    return tensor.detach().cpu().numpy().copy()
