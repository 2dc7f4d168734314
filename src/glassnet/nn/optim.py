"""Optimizers with PyTorch's update rules (``torch.optim.SGD`` and ``torch.optim.Adam``).

An optimizer walks the model's ``(name, layer, key)`` triples: it reads
``layer.grads[key]`` and updates ``layer.params[key]`` in place, so references held
by the user stay valid. Its state is keyed by the same names ("0.weight", ...) and lives
where the parameters live (``model.to(xp, device)`` moves it with them).
"""
import math

import numpy as np

from ..backend import NUMPY, beside, namespace, numpy_dtype, to_namespace, to_numpy
from ..errors import GlassnetError
from ..validation import non_negative_number, positive_number, probability


class Optimizer:
    """Shared plumbing. ``lr`` is the rate in force (a schedule sets it before each step);
    ``decay_filter(name, layer, key) -> bool`` (None: every parameter) says which parameters weight
    decay applies to: ``gn.decay_weights_only`` leaves out biases and BatchNorm's scale and shift, a
    common recipe (PyTorch writes it as two parameter groups)."""

    def __init__(self, model, lr, weight_decay=0.0, decay_filter=None):
        if not hasattr(model, "named_parameters"):
            raise GlassnetError(f"{type(self).__name__}: expected a Sequential model. Received: {type(model).__name__}")
        if decay_filter is not None and not callable(decay_filter):
            raise GlassnetError(f"{type(self).__name__}: decay_filter must be a function (name, layer, key) -> bool "
                                f"or None. Received: {decay_filter!r}")
        self.model = model
        self.lr = positive_number(lr, "lr", type(self).__name__)
        self.weight_decay = non_negative_number(weight_decay, "weight_decay", type(self).__name__)
        self.decay_filter = decay_filter
        self.state = {}
        self.steps = 0
        if hasattr(model, "register_optimizer"):
            model.register_optimizer(self)    # so that model.to(...) moves this state too

    def step(self):
        """Apply one update to every parameter from its current gradient."""
        for name, layer, key in self.model.named_parameters():
            if key not in layer.grads:
                raise GlassnetError(f"{type(self).__name__}.step: no gradient for {name}; call model.backward first")
            param, grad = layer.params[key], layer.grads[key]
            decays = self.decay_filter is None or bool(self.decay_filter(name, layer, key))
            self.decay = self.weight_decay if decays else 0.0          # read by _update for this parameter
            param -= self._update(name, param, namespace(param).astype(grad, param.dtype, copy=False))
        self.steps += 1

    def to(self, xp, device=None):
        """Move every state array into namespace ``xp`` on ``device``; returns self."""
        move = lambda value: to_namespace(to_numpy(value), xp, device) if hasattr(value, "shape") else value  # noqa
        self.state = {name: tuple(map(move, entry)) if isinstance(entry, tuple) else move(entry)
                      for name, entry in self.state.items()}
        return self

    # -- state for checkpoints ------------------------------------------------------------
    def hyperparameters(self):
        """Constructor arguments (JSON-ready) that rebuild this optimizer."""
        return {"lr": self.lr, **self._filter_name()}

    def _filter_name(self):
        """{"decay_filter": its function's name} when there is one (a function cannot be saved)."""
        if self.decay_filter is None:
            return {}
        return {"decay_filter": getattr(self.decay_filter, "__name__", type(self.decay_filter).__name__)}

    def state_arrays(self):
        """name -> array of every per-parameter state (e.g. ``"0.weight.exp_avg"``)."""
        return {}

    def state_counters(self):
        """JSON-ready counters: the step count and any per-parameter integers."""
        return {"steps": self.steps}

    def load_state(self, counters, read_array):
        """Restore from ``state_counters()`` output and ``read_array(name, shape, dtype)`` for arrays."""
        self.steps = _count(counters.get("steps"), "steps")

    def zero_grad(self):
        """Forget the stored gradients (backward overwrites them anyway)."""
        for _, layer, key in self.model.named_parameters():
            layer.grads.pop(key, None)


def _count(value, what):
    if type(value) is not int or value < 0:
        raise GlassnetError(f"optimizer state: {what} must be a non-negative int. Received: {value!r}")
    return value


class SGD(Optimizer):
    """Stochastic gradient descent, as ``torch.optim.SGD``.

    With g = grad + weight_decay * param:
    ``buf = g`` (first step) or ``momentum * buf + (1 - dampening) * g``;
    ``direction = g + momentum * buf`` if nesterov else ``buf`` (or ``g`` without momentum);
    ``param -= lr * direction``.

    Examples
    --------
    >>> model = gn.Sequential([gn.Dense(1, 1)])
    >>> model[0].params["weight"][...] = 2.0
    >>> model[0].params["bias"][...] = 0.0
    >>> loss = gn.MSE()
    >>> loss.forward(model(np.array([[3.0]])), np.array([[0.0]]))   # (2 * 3 - 0)**2
    36.0
    >>> _ = model.backward(loss.backward())                          # dL/dw = 2 * (6 - 0) * 3 = 36
    >>> gn.SGD(model, lr=0.01).step()
    >>> model[0].params["weight"]                                    # 2 - 0.01 * 36
    array([[1.64]])
    """

    def __init__(self, model, lr=0.01, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                 decay_filter=None):
        super().__init__(model, lr, weight_decay, decay_filter)
        self.momentum = probability(momentum, "momentum", "SGD")
        self.dampening = probability(dampening, "dampening", "SGD", allow_one=True)
        self.nesterov = bool(nesterov)
        if self.nesterov and (self.momentum == 0 or self.dampening != 0):
            raise GlassnetError("SGD: nesterov needs momentum > 0 and dampening = 0. "
                                f"Received: momentum={momentum}, dampening={dampening}")

    def hyperparameters(self):
        return {"lr": self.lr, "momentum": self.momentum, "dampening": self.dampening,
                "weight_decay": self.weight_decay, "nesterov": self.nesterov, **self._filter_name()}

    def state_arrays(self):
        return {f"{name}.momentum_buffer": buf for name, buf in self.state.items()}

    def state_counters(self):
        return {"steps": self.steps, "buffers": sorted(self.state)}

    def load_state(self, counters, read_array):
        super().load_state(counters, read_array)
        self.state = {}
        parameters = self.model.parameters()
        for name in counters.get("buffers", []):
            if name not in parameters:
                raise GlassnetError(f"optimizer state: no parameter named {name!r}")
            self.state[name] = beside(parameters[name], read_array(f"{name}.momentum_buffer",
                                                                   tuple(parameters[name].shape),
                                                                   numpy_dtype(parameters[name].dtype)))

    def _update(self, name, param, grad):
        g = grad + self.decay * param if self.decay else grad
        if self.momentum == 0:
            return self.lr * g
        buf = self.state.get(name)
        if type(buf) is np.ndarray and type(g) is np.ndarray and buf.dtype == g.dtype:
            # in place, the same arithmetic: buf = momentum * buf + (1 - dampening) * g (the factor skipped
            # when it is 1: g * 1.0 is g)
            buf *= self.momentum
            buf += (1 - self.dampening) * g if self.dampening else g
        else:
            buf = namespace(g).asarray(g, copy=True) if buf is None else self.momentum * buf + (1 - self.dampening) * g
        self.state[name] = buf
        direction = g + self.momentum * buf if self.nesterov else buf
        return self.lr * direction


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam`` (L2 weight decay added to the gradient, not AdamW).

    ``m = b1 m + (1 - b1) g``; ``v = b2 v + (1 - b2) g^2``;
    ``param -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``.
    """

    def __init__(self, model, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decay_filter=None):
        super().__init__(model, lr, weight_decay, decay_filter)
        name = type(self).__name__
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise GlassnetError(f"{name}: betas must be a pair. Received: betas={betas!r}")
        self.betas = (probability(betas[0], "betas[0]", name), probability(betas[1], "betas[1]", name))
        self.eps = positive_number(eps, "eps", name)

    def hyperparameters(self):
        return {"lr": self.lr, "betas": list(self.betas), "eps": self.eps, "weight_decay": self.weight_decay,
                **self._filter_name()}

    def state_arrays(self):
        arrays = {}
        for name, (m, v, _) in self.state.items():
            arrays[f"{name}.exp_avg"], arrays[f"{name}.exp_avg_sq"] = m, v
        return arrays

    def state_counters(self):
        return {"steps": self.steps, "counts": {name: t for name, (_, _, t) in self.state.items()}}

    def load_state(self, counters, read_array):
        super().load_state(counters, read_array)
        self.state = {}
        parameters = self.model.parameters()
        counts = counters.get("counts", {})
        if not isinstance(counts, dict):
            raise GlassnetError(f"optimizer state: counts must be a mapping. Received: {counts!r}")
        for name, t in counts.items():
            if name not in parameters:
                raise GlassnetError(f"optimizer state: no parameter named {name!r}")
            param = parameters[name]
            shape, dtype = tuple(param.shape), numpy_dtype(param.dtype)
            self.state[name] = (beside(param, read_array(f"{name}.exp_avg", shape, dtype)),
                                beside(param, read_array(f"{name}.exp_avg_sq", shape, dtype)),
                                _count(t, f"count of {name}"))

    def _update(self, name, param, grad):
        b1, b2 = self.betas
        xp = namespace(param)
        g = grad + self.decay * param if self.decay else grad
        if name not in self.state:
            self.state[name] = (xp.zeros_like(param), xp.zeros_like(param), 0)
        m, v, t = self.state[name]
        t += 1
        # the moments are updated in place (same arithmetic, no new arrays per step)
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * (g * g)
        self.state[name] = (m, v, t)
        step_size = self.lr / (1 - b1 ** t)
        denom = xp.sqrt(v)
        denom /= math.sqrt(1 - b2 ** t)
        denom += self.eps
        if xp is NUMPY:
            np.divide(m, denom, out=denom)          # m / denom without a new array
            step = denom
        else:
            step = m / denom
        step *= step_size
        return step


def decay_weights_only(name, layer, key):
    """A ``decay_filter``: weight decay on the weights of Conv2D, ConvTranspose2D and Dense only (not on
    biases, BatchNorm's scale and shift, or PReLU's slopes)."""
    return key == "weight" and type(layer).__name__ in ("Conv2D", "ConvTranspose2D", "Dense")
