"""GELU written out in ONNX ops (PyTorch's TorchScript exporter, before opset 20 had ``Gelu``):
``x * 0.5 * (1 + erf(x / sqrt 2))`` or ``0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))``, found
around each Erf or Tanh node and replaced by one ``Gelu`` node when the region, evaluated on sample
values, computes GELU. The region must be element-wise ops of one data value and constants, and
nothing outside it may read its intermediate values."""
import math

import numpy as np

from ..nn.layers.special import normal_cdf

ELEMENTWISE = {"Add", "Sub", "Mul", "Div", "Pow", "Erf", "Tanh"}
UNARY = {"Erf", "Tanh"}
SAMPLES = np.linspace(-6.0, 6.0, 121)


def gelu_of(values, approximate):
    if approximate == "tanh":
        return 0.5 * values * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (values + 0.044715 * values ** 3)))
    return values * normal_cdf(values)


def fuse_gelu(nodes, constants, helper):
    """``nodes`` (a list, changed in place) with every written-out GELU replaced by a ``Gelu`` node."""
    for trigger in [n for n in nodes if n.op_type in UNARY]:
        if trigger in nodes and _well_formed(trigger):
            _fuse_one(nodes, constants, helper, trigger, "none" if trigger.op_type == "Erf" else "tanh")


def _well_formed(node):
    """An element-wise node with its op's number of inputs (1 or 2) and one output: only these may fuse
    (a malformed one is left for the reader, which names what is wrong with it)."""
    arity = 1 if node.op_type in UNARY else 2
    return node.op_type in ELEMENTWISE and len(node.input) == arity and len(node.output) == 1


def _fuse_one(nodes, constants, helper, trigger, approximate):
    producers = {out: n for n in nodes for out in n.output}
    region, leaves = set(), set()

    def collect(name):                    # the element-wise nodes between ``name`` and the data value
        producer = producers.get(name)
        if name in constants:
            return
        if producer is None or not _well_formed(producer):
            leaves.add(name)
            return
        if id(producer) in region:
            return
        region.add(id(producer))
        for source in producer.input:
            collect(source)
    collect(trigger.input[0])
    if len(leaves) != 1:
        return
    (x,) = leaves
    region.add(id(trigger))
    current = trigger
    for _ in range(6):                    # follow the single reader until the value is GELU of x
        readers = [n for n in nodes if current.output[0] in n.input]
        if len(readers) != 1 or not _well_formed(readers[0]):
            return
        current = readers[0]
        region.add(id(current))
        for source in current.input:
            collect(source)
        if len(leaves) != 1:
            return
        members = [n for n in nodes if id(n) in region]
        values = _evaluate(members, constants, x, current.output[0])
        expected = gelu_of(SAMPLES, approximate)
        if values is not None and np.shape(values) == SAMPLES.shape and np.allclose(values, expected, rtol=1e-5,
                                                                                     atol=1e-6):
            inside = {out for n in members for out in n.output}
            outside = [n for n in nodes if id(n) not in region and any(i in inside for i in n.input
                                                                          if i != current.output[0])]
            if outside:
                return
            position = nodes.index(members[-1])
            nodes.insert(position + 1, helper.make_node("Gelu", [x], [current.output[0]],
                                                        name=f"{trigger.name or 'gelu'}.fused",
                                                        approximate=approximate))
            for member in members:
                nodes.remove(member)
            return


def _evaluate(members, constants, x, output):
    """The region's value at ``output`` for x = SAMPLES (None if it cannot be evaluated)."""
    values = {x: SAMPLES}
    with np.errstate(all="ignore"):
        try:
            for node in members:
                values[node.output[0]] = _evaluate_node(node, values, constants)
        except (KeyError, ValueError, TypeError):          # a missing or ill-shaped constant: not GELU
            return None
    return values.get(output)


def _evaluate_node(node, values, constants):
    """One element-wise node's value from its inputs' values (KeyError where an input has none)."""
    args = [values[i] if i in values else np.asarray(constants[i], dtype=np.float64) for i in node.input]
    op = node.op_type
    if op == "Erf":
        return 2.0 * normal_cdf(args[0] * math.sqrt(2.0)) - 1.0             # erf z = 2 Phi(z sqrt 2) - 1
    if op == "Tanh":
        return np.tanh(args[0])
    a, b = args
    return {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide, "Pow": np.power}[op](a, b)

