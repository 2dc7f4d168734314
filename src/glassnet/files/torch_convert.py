"""PyTorch modules <-> glassnet models, weights copied, layouts the same: ``nn.Sequential`` <->
``Sequential``; any module torch.fx can trace -> a graph ``Model`` (``torch_graph.py``); a graph
``Model`` -> a ``torch.fx.GraphModule``.

NCHW activations and (out, in, kh, kw) kernels are PyTorch's layouts too; the one change is
Dense's weight: glassnet keeps (in, out), ``nn.Linear`` (out, in).
"""
import numpy as np

from ..errors import GlassnetError
from ..nn.layers import (Add, AvgPool2D, BatchNorm2D, Concatenate, Conv2D, Dense, Dropout, Flatten,
                         GlobalAvgPool2D, GlobalMaxPool2D, Identity, LeakyReLU, MaxPool2D, Multiply, ReLU, Sigmoid,
                         Softmax, Tanh)
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
    elif kind is GlobalAvgPool2D:
        module = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    elif kind is GlobalMaxPool2D:
        module = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten())
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
    return module


SIMPLE_TO_TORCH = {ReLU: "ReLU", Sigmoid: "Sigmoid", Tanh: "Tanh", Flatten: "Flatten", Identity: "Identity"}
SIMPLE_FROM_TORCH = {"ReLU": ReLU, "Sigmoid": Sigmoid, "Tanh": Tanh, "Identity": Identity}


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
    elif type(child).__name__ in SIMPLE_FROM_TORCH:
        layer = SIMPLE_FROM_TORCH[type(child).__name__]()
    else:
        raise GlassnetError(f"{where} has no glassnet equivalent")
    if "bias" in layer.params and getattr(child, "bias", None) is not None:
        layer.params["bias"] = _numpy(child.bias)
    return layer


def _numpy(tensor):
    return tensor.detach().cpu().numpy().copy()
