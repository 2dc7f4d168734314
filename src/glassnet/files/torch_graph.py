"""Any PyTorch module that ``torch.fx.symbolic_trace`` can trace -> a glassnet graph ``Model``.

fx turns ``forward`` into a list of nodes: placeholders (the inputs), ``call_module`` (a submodule
called: converted by ``torch_convert._glassnet_layer``; a submodule called twice becomes one shared
layer), ``call_function`` and ``call_method`` (``+``, ``*``, ``torch.cat``, ``torch.flatten``,
``F.relu``, ``x.mean(dim=(2, 3))``, ...: each looked up in the tables below) and the output. A global
pooling that keeps its 1x1 axes (``AdaptiveAvgPool2d(1)``, ``mean(..., keepdim=True)``) is glassnet's
(N, C) pooling waiting for the flatten that follows it (or a Reshape to (N, C, 1, 1) where a convolution
or a product reads it). Shapes, views and transposes are read by ``torch_shapes``.
"""
import operator

from ..errors import GlassnetError
from ..models.model import Model
from ..nn.layers import (ELU, GELU, SELU, Add, AvgPool2D, ChannelShuffle, Concatenate, Flatten, GlobalAvgPool2D,
                         GlobalMaxPool2D, Hardsigmoid, Hardswish, LeakyReLU, LogSoftmax, MaxPool2D, Multiply, Pad2D,
                         PixelShuffle, Reshape, ReLU, ReLU6, Sigmoid, SiLU, Softmax, Softplus, Tanh)
from ..nn.symbolic import Input
from .torch_convert import _glassnet_layer, _upsample
from .torch_fixed import is_fixed_module
from .torch_shapes import ARITHMETIC, Value, arithmetic, item, reshaped, shape_call, transposed


_Value = Value


def traced_model(torch, module, input_shape, dtype):
    name = type(module).__name__
    if input_shape is None:
        raise GlassnetError(f"from_torch: {name} is not an nn.Sequential, so it is traced into a graph; pass "
                            f"input_shape=(C, H, W) (one sample's shape)")
    try:
        class Tracer(torch.fx.Tracer):                          # glassnet's own modules stay calls
            def is_leaf_module(self, submodule, qualified_name):
                return is_fixed_module(torch, submodule) or super().is_leaf_module(submodule, qualified_name)
        traced = torch.fx.GraphModule(module, Tracer().trace(module))
    except Exception as error:  # noqa: BLE001 -- fx raises many kinds for code it cannot trace
        raise GlassnetError(f"from_torch: torch.fx cannot trace {name} ({type(error).__name__}: {error})") from None
    modules = dict(traced.named_modules())
    placeholders = [node for node in traced.graph.nodes if node.op == "placeholder"]
    if len(placeholders) != 1:
        raise GlassnetError(f"from_torch: {name}.forward takes {len(placeholders)} inputs; one is supported")
    x = Input(tuple(input_shape))
    values, shared, output = {}, {}, None
    F = torch.nn.functional
    functions = {operator.getitem: "getitem", **ARITHMETIC,
                 operator.add: "add", torch.add: "add", operator.mul: "mul", torch.mul: "mul", torch.cat: "cat",
                 torch.flatten: "flatten", torch.relu: "relu", F.relu: "relu", torch.sigmoid: "sigmoid",
                 torch.tanh: "tanh", F.leaky_relu: "leaky_relu", F.softmax: "softmax", F.max_pool2d: "max_pool",
                 torch.max_pool2d: "max_pool", F.avg_pool2d: "avg_pool", F.adaptive_avg_pool2d: "adaptive_avg",
                 F.adaptive_max_pool2d: "adaptive_max", torch.mean: "mean", torch.amax: "amax",
                 getattr: "getattr", F.relu6: "relu6", F.silu: "silu", F.gelu: "gelu", F.hardswish: "hardswish",
                 F.hardsigmoid: "hardsigmoid", F.elu: "elu", F.selu: "selu", F.softplus: "softplus",
                 F.log_softmax: "log_softmax", F.interpolate: "interpolate", F.pad: "pad",
                 F.pixel_shuffle: "pixel_shuffle", torch.pixel_shuffle: "pixel_shuffle",
                 F.channel_shuffle: "channel_shuffle", torch.channel_shuffle: "channel_shuffle"}
    for node in traced.graph.nodes:
        where = f"from_torch: {name} node {node.name!r}"
        try:
            if node.op == "placeholder":
                values[node] = _Value(x)
            elif node.op == "call_module":
                values[node] = _call_module(torch, modules[node.target], node, values, shared, where)
            elif node.op in ("call_function", "call_method"):
                kind = functions.get(node.target) if node.op == "call_function" else node.target
                values[node] = _call_function(kind, node, values, where)
            elif node.op == "output":
                output = node.args[0]
            else:
                raise GlassnetError(f"{where}: {node.op} {node.target} (reading a parameter or buffer directly) "
                                    f"is not supported")
        except GlassnetError as error:
            message = str(error)
            raise GlassnetError(message if message.startswith("from_torch") else f"{where}: {message}") from None
    result = values.get(output) if not isinstance(output, (tuple, list)) else None
    if not isinstance(result, _Value) or result.pooled:
        raise GlassnetError(f"from_torch: {name} must return one tensor of shape (N, ...) (a pooling flattened)")
    return Model(x, result.symbolic, dtype=dtype)


def _tensor(values, argument, where):
    value = values.get(argument) if hasattr(argument, "op") else None
    if not isinstance(value, _Value):
        raise GlassnetError(f"{where}: expected a tensor computed from the input. Received: {argument!r:.60}")
    return value


def _plain(value, where):
    """The value as PyTorch holds it: a global pooling kept as (N, C, 1, 1) (squeeze-and-excitation's
    1x1 convolutions and gate read it so) becomes a Reshape of glassnet's (N, C), made once."""
    if value.pooled:
        if value.image is None:
            (channels,) = value.symbolic.shape
            value.image = Reshape((channels, 1, 1))(value.symbolic)
        return value.image
    return value.symbolic


def _call_module(torch, submodule, node, values, shared, where):
    nn = torch.nn
    value = _tensor(values, node.args[0], where)
    if isinstance(submodule, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        if submodule.output_size not in (1, (1, 1)):
            raise GlassnetError(f"{where}: adaptive pooling to {submodule.output_size} (only 1x1 is supported)")
        pool = GlobalAvgPool2D if isinstance(submodule, nn.AdaptiveAvgPool2d) else GlobalMaxPool2D
        return _Value(pool()(_plain(value, where)), pooled=True)
    if isinstance(submodule, nn.Flatten) and value.pooled:
        return _Value(value.symbolic)
    if node.target not in shared:                               # a module called twice: one shared layer
        shared[node.target] = _glassnet_layer(nn, submodule, f"{where} ({type(submodule).__name__})")
    return _Value(shared[node.target](_plain(value, where)))


def _call_function(kind, node, values, where):
    args, kwargs = list(node.args), dict(node.kwargs)

    def argument(position, key, default):
        return args[position] if len(args) > position else kwargs.get(key, default)
    def resolved(a):                                 # a node's traced value (a tensor, a shape, a size)
        if isinstance(a, (list, tuple)):
            return [resolved(v) for v in a]
        return values.get(a) if hasattr(a, "op") else a
    if kind in ("size", "getattr"):
        if kind == "getattr" and argument(1, "name", None) != "shape":
            raise GlassnetError(f"{where}: reading {argument(1, 'name', None)!r} of a tensor is not supported")
        return shape_call(_tensor(values, args[0], where), None if kind == "getattr" else argument(1, "dim", None))
    if kind == "getitem":
        return item(resolved(args[0]), resolved(args[1]), where)
    if kind in ARITHMETIC.values() or (kind in ("add", "mul") and not isinstance(resolved(args[0]), _Value)):
        function = {"add": operator.add, "mul": operator.mul, **{v: k for k, v in ARITHMETIC.items()}}[kind]
        return arithmetic(function, resolved(args[0]), resolved(args[1]), where)
    if kind in ("add", "mul", "__add__", "__mul__", "add_", "mul_"):
        inputs = [_plain(_tensor(values, a, where), where) for a in args[:2]]
        if len(args) != 2 or kwargs:
            raise GlassnetError(f"{where}: only the sum or product of two tensors is supported")
        return _Value((Add if kind.startswith("add") or kind == "__add__" else Multiply)()(inputs))
    if kind == "cat":
        tensors = argument(0, "tensors", None)
        if not isinstance(tensors, (list, tuple)):
            raise GlassnetError(f"{where}: torch.cat of a list of tensors is expected")
        inputs = [_plain(_tensor(values, a, where), where) for a in tensors]
        return _Value(Concatenate(axis=argument(1, "dim", 0))(inputs))
    value = _tensor(values, args[0] if args else kwargs.get("input"), where)
    if kind == "flatten":
        if argument(1, "start_dim", 0) != 1 or argument(2, "end_dim", -1) != -1:
            raise GlassnetError(f"{where}: only a flatten from dimension 1 is supported")
        return _Value(value.symbolic) if value.pooled else _Value(Flatten()(value.symbolic))
    if kind in ("view", "reshape"):
        return reshaped(value, resolved(args[1:]), where)
    if kind == "transpose":
        return transposed(value, resolved(args[1:]), where)
    if kind == "contiguous":
        return value
    simple = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh, "relu6": ReLU6, "silu": SiLU,
              "hardswish": Hardswish, "hardsigmoid": Hardsigmoid, "selu": SELU}
    if kind in simple:
        return _Value(simple[kind]()(_plain(value, where)))
    layer = _modern_function(kind, argument, where)
    if layer is not None:
        return _Value(layer(_plain(value, where)))
    if kind == "leaky_relu":
        return _Value(LeakyReLU(argument(1, "negative_slope", 0.01))(_plain(value, where)))
    if kind == "softmax":
        if argument(1, "dim", None) not in (1, -1):
            raise GlassnetError(f"{where}: only a softmax over dim 1 is supported")
        return _Value(Softmax()(_plain(value, where)))
    if kind in ("max_pool", "avg_pool"):
        extra = {"ceil_mode": False, "return_indices": False, "count_include_pad": True, "divisor_override": None,
                 "dilation": 1}
        for key, default in extra.items():
            if kwargs.get(key, default) != default:
                raise GlassnetError(f"{where}: {key}={kwargs[key]} is not supported")
        kernel = argument(1, "kernel_size", None)
        stride = argument(2, "stride", None) or None
        pool = MaxPool2D if kind == "max_pool" else AvgPool2D
        return _Value(pool(kernel, stride, argument(3, "padding", 0))(_plain(value, where)))
    if kind in ("adaptive_avg", "adaptive_max"):
        if argument(1, "output_size", None) not in (1, (1, 1), [1, 1]):
            raise GlassnetError(f"{where}: adaptive pooling only to 1x1 is supported")
        pool = GlobalAvgPool2D if kind == "adaptive_avg" else GlobalMaxPool2D
        return _Value(pool()(_plain(value, where)), pooled=True)
    if kind in ("mean", "amax"):
        dims = argument(1, "dim", None)
        if dims is not None:
            dims = sorted(d % 4 for d in (dims if isinstance(dims, (list, tuple)) else [dims]))
        if dims != [2, 3]:
            raise GlassnetError(f"{where}: {kind} over dims {dims}: only over (2, 3) of (N, C, H, W) is supported")
        pool = GlobalAvgPool2D if kind == "mean" else GlobalMaxPool2D
        return _Value(pool()(_plain(value, where)), pooled=bool(argument(2, "keepdim", False)))
    raise GlassnetError(f"{where}: {getattr(kind, '__name__', kind) or node.target} has no glassnet equivalent")


def _modern_function(kind, argument, where):
    """The layer for a functional call of the layers of real architectures (``F.gelu(x)``, ...), or None."""
    if kind == "gelu":
        return GELU(argument(1, "approximate", "none"))
    if kind == "elu":
        return ELU(argument(1, "alpha", 1.0))
    if kind == "softplus":
        return Softplus(argument(1, "beta", 1.0), argument(2, "threshold", 20.0))
    if kind == "log_softmax":
        if argument(1, "dim", None) not in (1, -3):
            raise GlassnetError(f"{where}: only a log_softmax over dim 1 is supported")
        return LogSoftmax()
    if kind == "interpolate":
        return _upsample(argument(2, "scale_factor", None), argument(1, "size", None),
                         argument(3, "mode", "nearest"), argument(4, "align_corners", None), where)
    if kind == "pad":
        pads = tuple(argument(1, "pad", ()))
        if len(pads) != 4:
            raise GlassnetError(f"{where}: F.pad of the last two axes (4 numbers) is expected. Received: {pads}")
        mode = argument(2, "mode", "constant")
        if mode not in ("constant", "reflect", "replicate"):
            raise GlassnetError(f"{where}: pad mode {mode!r} is not supported")
        left, right, top, bottom = pads
        return Pad2D((top, bottom, left, right), mode, argument(3, "value", None) or 0.0)
    if kind == "pixel_shuffle":
        return PixelShuffle(argument(1, "upscale_factor", None))
    if kind == "channel_shuffle":
        return ChannelShuffle(argument(1, "groups", None))
    return None
