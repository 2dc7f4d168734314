"""Learning-rate schedules with ``torch.optim.lr_scheduler``'s classes, arguments and numbers.

A schedule sets ``optimizer.lr`` (the rate in force). Made, it takes its first step at once (as PyTorch:
``LinearLR`` starts the rate at ``start_factor * lr``); then ``step()`` once per batch or per epoch, as you
choose, after ``optimizer.step()``. ``get_last_lr()`` gives ``[rate]``; ``state_dict()`` and
``load_state_dict()`` save and restore it (``fit`` keeps it in checkpoints).

The rates follow PyTorch's own recurrences (``CosineAnnealingLR`` multiplies the previous rate by a ratio
of cosines; it does not evaluate the closed form), so that they agree with PyTorch's to the last bits.

Examples
--------
>>> model = gn.Sequential([gn.Dense(2, 2)])
>>> opt = gn.SGD(model, lr=0.1)
>>> schedule = gn.schedules.StepLR(opt, step_size=2, gamma=0.5)
>>> rates = []
>>> for epoch in range(5):
...     rates.append(opt.lr)          # train one epoch with opt.lr here
...     schedule.step()
>>> rates
[0.1, 0.1, 0.05, 0.05, 0.025]
"""
import bisect
import math

from ..errors import GlassnetError
from ..nn.optim import Adam, Optimizer


def _check_optimizer(optimizer, owner):
    if not isinstance(optimizer, Optimizer):
        raise GlassnetError(f"{owner}: expected a glassnet optimizer (gn.SGD, gn.Adam, ...). "
                            f"Received: {type(optimizer).__name__}")
    return optimizer


def _positive_int(value, name, owner, minimum=1):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise GlassnetError(f"{owner}: {name} must be an int of at least {minimum}. Received: {value!r}")
    return value


def _number(value, name, owner, low=None, high=None, low_open=False, high_open=False):
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise GlassnetError(f"{owner}: {name} must be a number. Received: {value!r}") from None
    bad = not math.isfinite(number) or (low is not None and (number < low or (low_open and number == low))) or \
        (high is not None and (number > high or (high_open and number == high)))
    if bad:
        interval = f"{'(' if low_open else '['}{low if low is not None else '-inf'}, " \
                   f"{high if high is not None else 'inf'}{')' if high_open or high is None else ']'}"
        raise GlassnetError(f"{owner}: {name} must be in {interval}. Received: {value!r}")
    return number


class _SavedRate:
    """What every schedule shares: the latest rate, and its state as JSON-ready attributes."""

    def get_last_lr(self):
        """[the rate set by the latest step] (a list, as PyTorch's, one rate per parameter group)."""
        return [self.last_lr]

    def state_dict(self):
        """JSON-ready state: every attribute but the optimizer."""
        return {key: value for key, value in vars(self).items() if key != "optimizer"}

    def load_state_dict(self, state):
        if not isinstance(state, dict) or set(state) != set(self.state_dict()):
            received = sorted(state) if isinstance(state, dict) else state
            raise GlassnetError(f"{type(self).__name__}.load_state_dict: expected the keys "
                                f"{sorted(self.state_dict())}. Received: {received!r}")
        vars(self).update(state)
        self.optimizer.lr = self.last_lr


class Schedule(_SavedRate):
    """Shared plumbing: ``last_epoch`` counts the steps taken (0 after the first, made at construction),
    ``base_lr`` is the optimizer's rate before any schedule (``initial_lr``, kept on the optimizer)."""

    def __init__(self, optimizer):
        self.optimizer = _check_optimizer(optimizer, type(self).__name__)
        if not hasattr(optimizer, "initial_lr"):
            optimizer.initial_lr = optimizer.lr
        self.base_lr = optimizer.initial_lr
        self.last_epoch = -1
        self._initial_step()

    def _initial_step(self):
        self.step_count, self.initial = 0, True
        self.step()
        self.initial = False

    def step(self):
        """Advance one step (a batch or an epoch: you choose) and set the optimizer's rate."""
        self.step_count += 1
        self._update(None)

    def _update(self, epoch):
        if epoch is None:
            self.last_epoch += 1
            rate = self.next_lr()
        else:                                         # SequentialLR's switch: the closed form at ``epoch``
            self.last_epoch = epoch
            rate = self.closed_form_lr() if hasattr(self, "closed_form_lr") else self.next_lr()
        self.optimizer.lr = rate
        self.last_lr = rate

    def next_lr(self):
        raise NotImplementedError



class StepLR(Schedule):
    """The rate times ``gamma`` every ``step_size`` steps."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        self.step_size = _positive_int(step_size, "step_size", "StepLR")
        self.gamma = _number(gamma, "gamma", "StepLR", low=0, low_open=True)
        super().__init__(optimizer)

    def next_lr(self):
        if self.last_epoch == 0 or self.last_epoch % self.step_size:
            return self.optimizer.lr
        return self.optimizer.lr * self.gamma

    def closed_form_lr(self):
        return self.base_lr * self.gamma ** (self.last_epoch // self.step_size)


class MultiStepLR(Schedule):
    """The rate times ``gamma`` at each step in ``milestones`` (increasing ints)."""

    def __init__(self, optimizer, milestones, gamma=0.1):
        values = list(milestones) if isinstance(milestones, (list, tuple)) else None
        if not values or any(isinstance(m, bool) or not isinstance(m, int) or m < 1 for m in values) or \
                any(b <= a for a, b in zip(values, values[1:])):
            raise GlassnetError(f"MultiStepLR: milestones must be a list of increasing positive ints. "
                                f"Received: {milestones!r}")
        self.milestones = values
        self.gamma = _number(gamma, "gamma", "MultiStepLR", low=0, low_open=True)
        super().__init__(optimizer)

    def next_lr(self):
        return self.optimizer.lr * self.gamma if self.last_epoch in self.milestones else self.optimizer.lr

    def closed_form_lr(self):
        return self.base_lr * self.gamma ** bisect.bisect_right(self.milestones, self.last_epoch)


class ExponentialLR(Schedule):
    """The rate times ``gamma`` every step."""

    def __init__(self, optimizer, gamma):
        self.gamma = _number(gamma, "gamma", "ExponentialLR", low=0, low_open=True)
        super().__init__(optimizer)

    def next_lr(self):
        return self.optimizer.lr if self.initial else self.optimizer.lr * self.gamma

    def closed_form_lr(self):
        return self.base_lr * self.gamma ** self.last_epoch


class CosineAnnealingLR(Schedule):
    """From the rate down to ``eta_min`` along half a cosine over ``T_max`` steps (then back up, as PyTorch):
    ``lr_t = eta_min + (base - eta_min) (1 + cos(pi t / T_max)) / 2``, reached by PyTorch's recurrence."""

    def __init__(self, optimizer, T_max, eta_min=0.0):   # noqa: N803 -- PyTorch's argument name
        self.T_max = _positive_int(T_max, "T_max", "CosineAnnealingLR")
        self.eta_min = _number(eta_min, "eta_min", "CosineAnnealingLR", low=0)
        super().__init__(optimizer)

    def next_lr(self):
        t, T, lr, low = self.last_epoch, self.T_max, self.optimizer.lr, self.eta_min
        if self.initial:
            return lr
        if self.step_count == 1 and t > 0:
            return low + (self.base_lr - low) * (1 + math.cos(t * math.pi / T)) / 2
        if (t - 1 - T) % (2 * T) == 0:
            return lr + (self.base_lr - low) * (1 - math.cos(math.pi / T)) / 2
        return (1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T)) * (lr - low) + low

    def closed_form_lr(self):
        low = self.eta_min
        return low + (self.base_lr - low) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2


class LinearLR(Schedule):
    """Warm-up: the rate times a factor going linearly from ``start_factor`` to ``end_factor`` over
    ``total_iters`` steps, then constant."""

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5):
        self.start_factor = _number(start_factor, "start_factor", "LinearLR", low=0, high=1, low_open=True)
        self.end_factor = _number(end_factor, "end_factor", "LinearLR", low=0, high=1)
        self.total_iters = _positive_int(total_iters, "total_iters", "LinearLR")
        super().__init__(optimizer)

    def next_lr(self):
        lr, start, end = self.optimizer.lr, self.start_factor, self.end_factor
        if self.last_epoch == 0:
            return lr * start
        if self.last_epoch > self.total_iters:
            return lr
        return lr * (1.0 + (end - start) / (self.total_iters * start + (self.last_epoch - 1) * (end - start)))

    def closed_form_lr(self):
        progress = min(self.total_iters, self.last_epoch) / self.total_iters
        return self.base_lr * (self.start_factor + (self.end_factor - self.start_factor) * progress)


class SequentialLR(Schedule):
    """One schedule after another: ``schedules[k]`` from step ``milestones[k - 1]`` on (warm-up then cosine:
    ``SequentialLR(opt, [LinearLR(opt, 0.1, total_iters=5), CosineAnnealingLR(opt, 45)], milestones=[5])``)."""

    def __init__(self, optimizer, schedules, milestones):
        self.optimizer = _check_optimizer(optimizer, "SequentialLR")
        if not isinstance(schedules, (list, tuple)) or not schedules or \
                any(not isinstance(s, Schedule) or isinstance(s, ReduceLROnPlateau) for s in schedules):
            raise GlassnetError("SequentialLR: schedules must be a non-empty list of schedules "
                                "(not ReduceLROnPlateau)")
        if any(s.optimizer is not optimizer for s in schedules):
            raise GlassnetError("SequentialLR: every schedule must belong to the same optimizer as SequentialLR's")
        values = list(milestones) if isinstance(milestones, (list, tuple)) else None
        if values is None or len(values) != len(schedules) - 1 or \
                any(isinstance(m, bool) or not isinstance(m, int) or m < 1 for m in values) or \
                any(b <= a for a, b in zip(values, values[1:])):
            raise GlassnetError(f"SequentialLR: milestones must be {len(schedules) - 1} increasing positive ints "
                                f"(one fewer than the schedules). Received: {milestones!r}")
        self.schedules, self.milestones = list(schedules), values
        self.last_epoch = 0
        optimizer.lr = optimizer.initial_lr                   # undo the schedules' own first steps
        for schedule in self.schedules:
            schedule.last_epoch -= 1
        self.schedules[0]._initial_step()
        self.last_lr = self.schedules[0].last_lr

    def step(self):
        self.last_epoch += 1
        index = bisect.bisect_right(self.milestones, self.last_epoch)
        schedule = self.schedules[index]
        if index > 0 and self.milestones[index - 1] == self.last_epoch:
            schedule._update(0)
        else:
            schedule.step()
        self.last_lr = schedule.last_lr

    def state_dict(self):
        return {"last_epoch": self.last_epoch, "last_lr": self.last_lr,
                "schedules": [schedule.state_dict() for schedule in self.schedules]}

    def load_state_dict(self, state):
        if not isinstance(state, dict) or not isinstance(state.get("schedules"), list) or \
                len(state["schedules"]) != len(self.schedules):
            raise GlassnetError(f"SequentialLR.load_state_dict: expected the state of {len(self.schedules)} "
                                f"schedules")
        for schedule, inner in zip(self.schedules, state["schedules"]):
            schedule.load_state_dict(inner)
        self.last_epoch, self.last_lr = state["last_epoch"], state["last_lr"]
        self.optimizer.lr = self.last_lr


class OneCycleLR(Schedule):
    """The one-cycle policy: the rate rises from ``max_lr / div_factor`` to ``max_lr`` over the first
    ``pct_start`` of ``total_steps`` (or ``epochs * steps_per_epoch``), then falls to ``initial /
    final_div_factor``, along cosines (or lines); momentum (SGD, RMSprop) or Adam's beta1 moves the other
    way, between ``max_momentum`` and ``base_momentum``. Step it once per batch."""

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None, pct_start=0.3,
                 anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85, max_momentum=0.95,
                 div_factor=25.0, final_div_factor=1e4, three_phase=False):
        owner = "OneCycleLR"
        _check_optimizer(optimizer, owner)
        if total_steps is not None:
            self.total_steps = _positive_int(total_steps, "total_steps", owner)
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = _positive_int(epochs, "epochs", owner) * _positive_int(steps_per_epoch,
                                                                                     "steps_per_epoch", owner)
        else:
            raise GlassnetError("OneCycleLR: give total_steps, or epochs and steps_per_epoch")
        pct = _number(pct_start, "pct_start", owner, low=0, high=1)
        if anneal_strategy not in ("cos", "linear"):
            raise GlassnetError(f"OneCycleLR: anneal_strategy must be 'cos' or 'linear'. "
                                f"Received: {anneal_strategy!r}")
        self.anneal_strategy = anneal_strategy
        max_lr = _number(max_lr, "max_lr", owner, low=0, low_open=True)
        div_factor = _number(div_factor, "div_factor", owner, low=0, low_open=True)
        final_div_factor = _number(final_div_factor, "final_div_factor", owner, low=0, low_open=True)
        optimizer.initial_lr = max_lr / div_factor
        self.rates = {"initial": optimizer.initial_lr, "max": max_lr,
                      "min": optimizer.initial_lr / final_div_factor}
        n = self.total_steps
        rise = (float(pct * n) - 1, "initial", "max", "max", "base")      # (last step, rate from, to, momentum ...)
        self.phases = ([rise, (float(2 * pct * n) - 2, "max", "initial", "base", "max"),
                        (n - 1, "initial", "min", "max", "max")] if three_phase else
                       [rise, (n - 1, "max", "min", "base", "max")])
        self.cycle_momentum = bool(cycle_momentum)
        if self.cycle_momentum:
            if not hasattr(optimizer, "momentum") and not isinstance(optimizer, Adam):
                raise GlassnetError(f"OneCycleLR: cycle_momentum needs an optimizer with momentum or betas; "
                                    f"{type(optimizer).__name__} has neither (pass cycle_momentum=False)")
            self.momenta = {"max": _number(max_momentum, "max_momentum", owner, low=0, high=1),
                            "base": _number(base_momentum, "base_momentum", owner, low=0, high=1)}
            self._set_momentum(optimizer, self.momenta["max"])
        super().__init__(optimizer)

    @staticmethod
    def _set_momentum(optimizer, value):
        if isinstance(optimizer, Adam):
            optimizer.betas = (value, optimizer.betas[1])
        else:
            optimizer.momentum = value

    def _anneal(self, start, end, fraction):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * fraction) + 1)
        return (end - start) * fraction + start

    def next_lr(self):
        step = self.last_epoch
        if step > self.total_steps:
            raise GlassnetError(f"OneCycleLR: stepped {step} times, past total_steps={self.total_steps}")
        begin = 0.0
        for index, (end, rate_from, rate_to, momentum_from, momentum_to) in enumerate(self.phases):
            if step <= end or index == len(self.phases) - 1:
                fraction = (step - begin) / (end - begin)
                if self.cycle_momentum:
                    self._set_momentum(self.optimizer, self._anneal(self.momenta[momentum_from],
                                                                    self.momenta[momentum_to], fraction))
                return self._anneal(self.rates[rate_from], self.rates[rate_to], fraction)
            begin = end
        raise AssertionError("unreachable: the last phase always answers")

    def load_state_dict(self, state):
        super().load_state_dict(state)
        if self.cycle_momentum:                       # the momentum in force at the saved step, set again
            self.next_lr()


class ReduceLROnPlateau(_SavedRate):
    """The rate times ``factor`` after ``patience`` steps without improvement of the metric given to
    ``step(metric)`` (less by ``threshold``, relative or absolute; ``mode="max"`` for accuracies), then
    ``cooldown`` steps of rest; never below ``min_lr``. A NaN metric is never an improvement."""

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4, threshold_mode="rel",
                 cooldown=0, min_lr=0.0, eps=1e-8):
        owner = "ReduceLROnPlateau"
        self.optimizer = _check_optimizer(optimizer, owner)
        if mode not in ("min", "max") or threshold_mode not in ("rel", "abs"):
            raise GlassnetError(f"{owner}: mode must be 'min' or 'max' and threshold_mode 'rel' or 'abs'. "
                                f"Received: {mode!r}, {threshold_mode!r}")
        self.mode, self.threshold_mode = mode, threshold_mode
        self.factor = _number(factor, "factor", owner, low=0, high=1, low_open=True, high_open=True)
        self.patience = _positive_int(patience, "patience", owner, minimum=0)
        self.threshold = _number(threshold, "threshold", owner, low=0)
        self.cooldown = _positive_int(cooldown, "cooldown", owner, minimum=0)
        self.min_lr = _number(min_lr, "min_lr", owner, low=0)
        self.eps = _number(eps, "eps", owner, low=0)
        self.last_epoch, self.last_lr = 0, optimizer.lr
        self.best = math.inf if mode == "min" else -math.inf
        self.cooldown_counter = self.num_bad_epochs = 0

    def _is_better(self, value):
        if math.isnan(value):
            return False
        if self.mode == "min":
            return value < (self.best * (1.0 - self.threshold) if self.threshold_mode == "rel" else
                            self.best - self.threshold)
        return value > (self.best * (self.threshold + 1.0) if self.threshold_mode == "rel" else
                        self.best + self.threshold)

    def step(self, metric):
        """After an epoch's validation: ``metric`` (the validation loss, or accuracy with mode="max")."""
        try:
            value = float(metric)
        except (TypeError, ValueError):
            raise GlassnetError(f"ReduceLROnPlateau.step: metric must be a number. Received: {metric!r}") from None
        self.last_epoch += 1
        if self._is_better(value):
            self.best, self.num_bad_epochs = value, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            old = float(self.optimizer.lr)
            new = max(old * self.factor, self.min_lr)
            if old - new > self.eps:
                self.optimizer.lr = new
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self.last_lr = self.optimizer.lr




SCHEDULES = {kind.__name__: kind for kind in (StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, LinearLR,
                                              SequentialLR, OneCycleLR, ReduceLROnPlateau)}
