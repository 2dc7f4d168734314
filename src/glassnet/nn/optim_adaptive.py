"""More optimizers with PyTorch's update rules: ``torch.optim.AdamW``, ``RMSprop`` and ``Adagrad``, on
the plumbing of ``optim.Optimizer`` (``lr`` the rate in force, ``decay_filter``, state keyed by
parameter name, checkpoints)."""
from ..backend import beside, namespace, numpy_dtype
from ..errors import GlassnetError
from ..validation import non_negative_number, positive_number, probability
from .optim import SGD, Adam, Optimizer, _count


class AdamW(Adam):
    """Adam with decoupled weight decay, as ``torch.optim.AdamW``: the weights shrink by ``lr * weight_decay``
    of themselves, apart from the gradient (which Adam's moments see unchanged):

    ``param *= 1 - lr wd``; then Adam's step from ``g`` (no ``wd * param`` added to it).
    """

    def __init__(self, model, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, decay_filter=None):
        super().__init__(model, lr, betas, eps, weight_decay, decay_filter)

    def _update(self, name, param, grad):
        decay = self.decay
        self.decay = 0.0                                  # Adam's own update sees the plain gradient
        step = super()._update(name, param, grad)
        if decay:
            param *= 1 - self.lr * decay                  # in place first, as PyTorch: p = p (1 - lr wd) - step
        return step


class _PerParameterState(Optimizer):
    """Checkpoint plumbing for optimizers whose state is a few named arrays per parameter and a count."""

    arrays = ()

    def state_arrays(self):
        return {f"{name}.{field}": entry[field] for name, entry in self.state.items() for field in self.arrays
                if entry.get(field) is not None}

    def state_counters(self):
        return {"steps": self.steps, "counts": {name: entry["step"] for name, entry in self.state.items()},
                "fields": {name: sorted(f for f in self.arrays if entry.get(f) is not None)
                           for name, entry in self.state.items()}}

    def load_state(self, counters, read_array):
        super().load_state(counters, read_array)
        self.state = {}
        parameters = self.model.parameters()
        counts, fields = counters.get("counts", {}), counters.get("fields", {})
        if not isinstance(counts, dict) or not isinstance(fields, dict):
            raise GlassnetError(f"optimizer state: counts and fields must be mappings. Received: {counts!r}")
        for name, t in counts.items():
            if name not in parameters or not isinstance(fields.get(name), list) or \
                    any(f not in self.arrays for f in fields[name]):
                raise GlassnetError(f"optimizer state: no parameter named {name!r}, or unknown state fields")
            param = parameters[name]
            shape, dtype = tuple(param.shape), numpy_dtype(param.dtype)
            entry = {"step": _count(t, f"count of {name}")}
            entry.update({f: beside(param, read_array(f"{name}.{f}", shape, dtype)) for f in fields[name]})
            self.state[name] = entry


class RMSprop(_PerParameterState):
    """RMSprop, as ``torch.optim.RMSprop``. With g = grad + weight_decay * param:

    ``v = alpha v + (1 - alpha) g^2``; centered: ``a = alpha a + (1 - alpha) g`` and ``d = sqrt(v - a^2) + eps``,
    else ``d = sqrt(v) + eps``; with momentum ``buf = momentum buf + g / d`` and ``param -= lr buf``, else
    ``param -= lr g / d``.
    """

    arrays = ("square_avg", "grad_avg", "momentum_buffer")

    def __init__(self, model, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
                 decay_filter=None):
        super().__init__(model, lr, weight_decay, decay_filter)
        self.alpha = probability(alpha, "alpha", "RMSprop", allow_one=True)
        self.eps = positive_number(eps, "eps", "RMSprop")
        self.momentum = probability(momentum, "momentum", "RMSprop")
        self.centered = bool(centered)

    def hyperparameters(self):
        return {"lr": self.lr, "alpha": self.alpha, "eps": self.eps, "weight_decay": self.weight_decay,
                "momentum": self.momentum, "centered": self.centered, **self._filter_name()}

    def _update(self, name, param, grad):
        xp = namespace(param)
        g = grad + self.decay * param if self.decay else grad
        entry = self.state.setdefault(name, {"step": 0, "square_avg": xp.zeros_like(param)})
        entry["step"] += 1
        # v = alpha v + (1 - alpha) g^2 (in place)
        square_avg = entry["square_avg"]
        square_avg *= self.alpha
        square_avg += (1 - self.alpha) * (g * g)
        if self.centered:
            grad_avg = entry.setdefault("grad_avg", xp.zeros_like(param))
            grad_avg *= self.alpha
            grad_avg += (1 - self.alpha) * g
            denominator = xp.sqrt(square_avg - grad_avg * grad_avg) + self.eps
        else:
            denominator = xp.sqrt(square_avg) + self.eps
        if self.momentum > 0:
            buf = entry.setdefault("momentum_buffer", xp.zeros_like(param))
            buf *= self.momentum
            buf += g / denominator
            return self.lr * buf
        return self.lr * (g / denominator)


class Adagrad(_PerParameterState):
    """Adagrad, as ``torch.optim.Adagrad``. With g = grad + weight_decay * param and t the step count:

    ``sum += g^2``; ``param -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(sum) + eps)``; ``sum`` starts at
    ``initial_accumulator_value``.
    """

    arrays = ("sum",)

    def __init__(self, model, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10,
                 decay_filter=None):
        super().__init__(model, lr, weight_decay, decay_filter)
        self.lr_decay = non_negative_number(lr_decay, "lr_decay", "Adagrad")
        self.initial_accumulator_value = non_negative_number(initial_accumulator_value,
                                                             "initial_accumulator_value", "Adagrad")
        self.eps = positive_number(eps, "eps", "Adagrad")

    def hyperparameters(self):
        return {"lr": self.lr, "lr_decay": self.lr_decay, "weight_decay": self.weight_decay,
                "initial_accumulator_value": self.initial_accumulator_value, "eps": self.eps, **self._filter_name()}

    def _update(self, name, param, grad):
        xp = namespace(param)
        g = grad + self.decay * param if self.decay else grad
        if name not in self.state:
            self.state[name] = {"step": 0, "sum": xp.full_like(param, self.initial_accumulator_value)}
        entry = self.state[name]
        entry["step"] += 1
        rate = self.lr / (1 + (entry["step"] - 1) * self.lr_decay)
        total = entry["sum"]
        total += g * g                                    # in place: the running sum of squares
        return rate * (g / (xp.sqrt(total) + self.eps))


# every optimizer a checkpoint may name, by exact type name
OPTIMIZERS = {kind.__name__: kind for kind in (SGD, Adam, AdamW, RMSprop, Adagrad)}
