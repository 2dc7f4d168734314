"""``glassnet explain``: a forward and backward pass printed step by step.

Three sources of a network: the built-in worked example (seed 000: 5x5 image, 2x2
kernel, ReLU, max pool, dense, sigmoid, binary cross-entropy, one SGD step at lr 0.1,
with what the seed got wrong), a saved model with an image file, or a small network
spelled on the command line (``--net "conv:2:3,relu,maxpool:2,flatten,dense:3"``).
"""
import numpy as np

from ..errors import GlassnetError
from ..nn.layers import (AvgPool2D, Conv2D, Dense, Flatten, Identity, LeakyReLU, MaxPool2D, ReLU, Sigmoid,
                         Softmax, Tanh)
from ..nn.losses import BinaryCrossEntropy, CrossEntropy, SoftmaxCrossEntropy
from ..nn.optim import SGD
from ..models.sequential import Sequential
from .trace import describe, trace
from ..training.loop import resolve_loss

SEED_IMAGE = np.array([[1, 2, 0, 2, 1], [0, 1, 1, 2, 1], [1, 2, 0, 1, 0], [1, 2, 1, 2, 1], [0, 0, 3, 2, 3]],
                      dtype=np.float64)
SEED_KERNEL = np.array([[1, -1], [-1, 1]], dtype=np.float64)
SEED_DENSE_WEIGHT = np.array([1, 1, -1, 1], dtype=np.float64)


def seed_example_model():
    """Seed 000's network with its hand-set weights: conv 2x2 (bias 1), ReLU, max pool 2, dense 4->1, sigmoid."""
    model = Sequential([Conv2D(1, 1, 2), ReLU(), MaxPool2D(2), Flatten(), Dense(4, 1), Sigmoid()])
    model.layers[0].params["weight"][...] = SEED_KERNEL
    model.layers[0].params["bias"][...] = 1.0
    model.layers[4].params["weight"][...] = SEED_DENSE_WEIGHT.reshape(4, 1)
    model.layers[4].params["bias"][...] = 0.0
    return model


def seed_example_trace(lr=0.1):
    """Seed 000's network on its image, target 1, traced through one SGD step at ``lr``."""
    model = seed_example_model()
    x, target = SEED_IMAGE.reshape(1, 1, 5, 5), np.array([[1.0]])
    return trace(model, x, target, BinaryCrossEntropy(), optimizer=SGD(model, lr=lr))


def seed_example(lr=0.1, max_elements=64):
    """The built-in worked example as text: the full trace, then what seed 000 printed and why it differs."""
    record = seed_example_trace(lr)
    intro = ("Seed 000's worked example: a 5x5 image, a 2x2 kernel (bias 1), ReLU, 2x2 max pool, flatten,\n"
             "a dense layer 4 -> 1 (weights [1, 1, -1, 1], bias 0), sigmoid, binary cross-entropy against\n"
             f"target 1, then one SGD step at learning rate {lr}.\n")
    return intro + "\n" + record.text(max_elements) + "\n\n" + seed_mistakes(record, lr)


def seed_mistake_facts(record, lr):
    """The arrays behind seed 000's two mistakes, recomputed from the trace's own arrays.

    Returns a dict: ``wrong_pool_grad`` (the seed sent the dense *weight* gradient down),
    ``correct_pool_grad`` (dL/d(a_flatten) = delta * weight), the seed's and the correct
    updated kernel and conv bias, and the loss in natural log and in the seed's log10.
    """
    conv, pool, dense = record.steps[0], record.steps[2], record.steps[4]
    weight_grad = dense.param_grads["weight"]       # delta * a_flatten, (4, 1)
    wrong_pool_grad = weight_grad.reshape(pool.output.shape)
    wrong_kernel_grad, wrong_bias_grad = _below_the_pool(wrong_pool_grad, conv)
    return {"wrong_pool_grad": wrong_pool_grad, "correct_pool_grad": dense.grad_input,
            "seed_kernel": conv.params_before["weight"] - lr * wrong_kernel_grad,
            "correct_kernel": conv.params_after["weight"],
            "seed_bias": float((conv.params_before["bias"] - lr * wrong_bias_grad)[0]),
            "correct_bias": float(conv.params_after["bias"][0]),
            "loss": float(record.loss), "loss_log10": float(record.loss / np.log(10))}


def seed_mistakes(record, lr):
    """Where the seed's printed backward pass went wrong, as text (see ``seed_mistake_facts``)."""
    facts = seed_mistake_facts(record, lr)
    lines = [
        "WHAT SEED 000 GOT WRONG",
        "=======================",
        "1. Its backward pass reshaped dL/d(weight FCNN) = delta * a_flatten into the pooling layer's",
        "   gradient. The pooling layer needs dL/d(a_flatten) = delta * weight FCNN instead:",
        describe("   seed's (wrong) gradient into max pool", facts["wrong_pool_grad"]),
        describe("   correct dL/d(a_flatten)", facts["correct_pool_grad"]),
        "   The seed's dense-layer update is right; everything below the dense layer is not:",
        describe("   seed's updated kernel", facts["seed_kernel"]),
        describe("   correct updated kernel (as above; PyTorch agrees)", facts["correct_kernel"]),
        f"   seed's updated conv bias {facts['seed_bias']:.10g}, correct {facts['correct_bias']:.10g}",
        f"2. It printed the loss with log10 ({facts['loss_log10']:.10g}) but differentiated the",
        f"   natural log; glassnet, like PyTorch, uses the natural log throughout: {facts['loss']:.10g}.",
    ]
    return "\n".join(lines)


def _below_the_pool(pool_grad, conv_step):
    """(kernel grad, bias grad) of seed 000's conv layer when ``pool_grad`` arrives at the pool output."""
    layers = [Conv2D(1, 1, 2), ReLU(), MaxPool2D(2)]
    layers[0].params["weight"][...] = conv_step.params_before["weight"]
    layers[0].params["bias"][...] = conv_step.params_before["bias"]
    h = conv_step.input
    for layer in layers:
        h = layer.forward(h)
    grad = pool_grad
    for layer in reversed(layers):
        grad = layer.backward(grad)
    return layers[0].grads["weight"], layers[0].grads["bias"]


# -- a small network spelled on the command line -----------------------------------------------

LAYER_WORDS = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh, "softmax": Softmax, "flatten": Flatten,
               "identity": Identity, "leakyrelu": LeakyReLU}
NET_HELP = ("comma-separated layers: conv:OUT:KERNEL[:STRIDE[:PADDING]], maxpool:K[:STRIDE], avgpool:K[:STRIDE], "
            "dense:OUT, relu, leakyrelu, sigmoid, tanh, softmax, flatten, identity")


def parse_net(spec, input_shape, seed=0):
    """Build a Sequential from ``spec`` (see NET_HELP) for inputs of ``input_shape`` (no batch axis)."""
    rng = np.random.default_rng(seed)
    shape, layers = tuple(input_shape), []
    for word in (w.strip().lower() for w in spec.split(",")):
        name, *args = word.split(":")
        try:
            numbers = [int(a) for a in args]
        except ValueError:
            raise GlassnetError(f"--net: {word!r} has a non-integer argument; expected {NET_HELP}") from None
        if name == "conv" and len(numbers) in (2, 3, 4):
            if len(shape) != 3:
                raise GlassnetError(f"--net: conv needs image inputs (C, H, W), it receives {shape}")
            layer = Conv2D(shape[0], numbers[0], numbers[1], *numbers[2:], rng=rng)
        elif name in ("maxpool", "avgpool") and len(numbers) in (1, 2):
            layer = (MaxPool2D if name == "maxpool" else AvgPool2D)(*numbers)
        elif name == "dense" and len(numbers) == 1:
            if len(shape) != 1:
                raise GlassnetError(f"--net: dense needs flat inputs, it receives {shape}; add flatten before it")
            layer = Dense(shape[0], numbers[0], rng=rng)
        elif name in LAYER_WORDS and not numbers:
            layer = LAYER_WORDS[name]()
        else:
            raise GlassnetError(f"--net: cannot read {word!r}; expected {NET_HELP}")
        shape = layer.output_shape(shape)
        layers.append(layer)
    if not layers:
        raise GlassnetError(f"--net: no layers given; expected {NET_HELP}")
    return Sequential(layers)


def loss_for(model, name=None):
    """The loss a model's last layer calls for: BCE after Sigmoid, CE after Softmax, else softmax CE."""
    if name is not None:
        return resolve_loss(name)
    last = type(model.layers[-1]).__name__
    return {"Sigmoid": BinaryCrossEntropy(), "Softmax": CrossEntropy()}.get(last, SoftmaxCrossEntropy())


def target_for(loss, outputs, label):
    """A one-sample target: class ``label`` (one-hot for BCE/MSE with several outputs)."""
    if not 0 <= label < max(outputs, 2):
        raise GlassnetError(f"--label must be in [0, {max(outputs, 2) - 1}]. Received: {label}")
    if isinstance(loss, (SoftmaxCrossEntropy, CrossEntropy)):
        return np.array([label])
    if outputs == 1:
        return np.array([[float(label)]])
    return np.eye(outputs)[[label]]


def explain_network(model, x, label, lr, max_elements, loss_name=None, title="", clip_norm=None):
    """Trace one SGD step of ``model`` on one sample ``x`` (1, ...) with target class ``label`` (its
    gradients clipped to ``clip_norm`` first, when given)."""
    loss = loss_for(model, loss_name)
    outputs = model.predict(x).shape[1]
    record = trace(model, x, target_for(loss, outputs, label), loss, optimizer=SGD(model, lr=lr),
                   clip_norm=clip_norm)
    return (title + "\n\n" if title else "") + record.text(max_elements)
