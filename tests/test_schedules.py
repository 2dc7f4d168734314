"""gn.schedules against torch.optim.lr_scheduler in float64: the rate after each of 30 steps (1e-12) and the
weights of SGD with momentum and of Adam trained under each schedule (1e-10); OneCycleLR's momentum and
beta1; ReduceLROnPlateau on a fixed sequence of metrics; state_dict round trips; bad arguments."""
import math

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as torch_schedules

import glassnet as gn
from reference import assert_matches, tensor

STEPS = 30


def both(name, kwargs, torch_kwargs=None):
    """(glassnet maker, torch maker) of one schedule: ``opt -> schedule``."""
    return (lambda opt: getattr(gn.schedules, name)(opt, **kwargs),
            lambda opt: getattr(torch_schedules, name)(opt, **(torch_kwargs or kwargs)))


def sequential(ours_or_theirs):
    module = gn.schedules if ours_or_theirs == "ours" else torch_schedules

    def make(opt):
        warm = module.LinearLR(opt, start_factor=0.1, total_iters=5)
        cosine = module.CosineAnnealingLR(opt, T_max=25, eta_min=1e-4)
        return module.SequentialLR(opt, [warm, cosine], milestones=[5])
    return make


SCHEDULES = {
    "step": both("StepLR", {"step_size": 7, "gamma": 0.5}),
    "multistep": both("MultiStepLR", {"milestones": [3, 10, 11, 20], "gamma": 0.3}),
    "exponential": both("ExponentialLR", {"gamma": 0.93}),
    "cosine": both("CosineAnnealingLR", {"T_max": 12, "eta_min": 0.001}),          # past T_max: back up
    "linear": both("LinearLR", {"start_factor": 0.2, "end_factor": 0.9, "total_iters": 8}),
    "onecycle": both("OneCycleLR", {"max_lr": 0.05, "total_steps": STEPS}),
    "onecycle_linear_three_phase": both("OneCycleLR", {"max_lr": 0.05, "total_steps": STEPS, "pct_start": 0.25,
                                                       "anneal_strategy": "linear", "three_phase": True}),
    "warmup_then_cosine": (sequential("ours"), sequential("theirs")),
}
OPTIMIZERS = {"momentum": (gn.SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}),
              "adam": (gn.Adam, torch.optim.Adam, {"lr": 0.01}),
              "adamw": (gn.AdamW, torch.optim.AdamW, {"lr": 0.01, "weight_decay": 0.05})}


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_rates_and_weights_follow_pytorch(schedule, optimizer):
    rng = np.random.default_rng(0)
    model = gn.Sequential([gn.Conv2D(2, 3, 2, rng=1), gn.Flatten(), gn.Dense(12, 4, rng=2)])
    params = {name: tensor(p, grad=True) for name, p in model.parameters().items()}
    ours_class, torch_class, kwargs = OPTIMIZERS[optimizer]
    ours, theirs = ours_class(model, **kwargs), torch_class(list(params.values()), **kwargs)
    make_ours, make_theirs = SCHEDULES[schedule]
    ours_schedule, theirs_schedule = make_ours(ours), make_theirs(theirs)
    assert math.isclose(ours.lr, theirs.param_groups[0]["lr"], rel_tol=1e-12)      # the first step, made at once
    for step in range(STEPS):
        for name, layer, key in model.named_parameters():
            grad = rng.standard_normal(tuple(layer.params[key].shape))
            layer.grads[key] = grad
            params[name].grad = tensor(grad)
        ours.step()
        theirs.step()
        if step < STEPS - 1 or not schedule.startswith("onecycle"):        # OneCycle has no step past its end
            ours_schedule.step()
            theirs_schedule.step()
        assert math.isclose(ours.lr, theirs.param_groups[0]["lr"], rel_tol=1e-12, abs_tol=1e-15), step
        assert ours_schedule.get_last_lr() == pytest.approx(theirs_schedule.get_last_lr(), rel=1e-12)
        if schedule.startswith("onecycle"):                                    # momentum / beta1 cycled too
            cycled = ours.betas[0] if optimizer != "momentum" else ours.momentum
            theirs_cycled = theirs.param_groups[0]["betas"][0] if optimizer != "momentum" else \
                theirs.param_groups[0]["momentum"]
            assert math.isclose(cycled, theirs_cycled, rel_tol=1e-12)
        for name, param in model.parameters().items():
            assert_matches(param, params[name])


def test_reduce_on_plateau_follows_pytorch_on_a_fixed_sequence_of_metrics():
    metrics = [1.0, 0.9, 0.91, 0.9, 0.95, 0.89, 0.9, 0.9, 0.9, 0.5, 0.5, 0.6, 0.7, 0.8, 0.49, 0.49, 0.49, 0.49,
               0.49, 0.49, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3]
    for kwargs in ({"patience": 2}, {"patience": 1, "cooldown": 2, "factor": 0.5, "min_lr": 0.004},
                   {"mode": "max", "patience": 0, "threshold": 0.05, "threshold_mode": "abs"}):
        model = gn.Sequential([gn.Dense(2, 2, rng=0)])
        ours = gn.SGD(model, lr=0.1)
        theirs = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1)
        ours_schedule = gn.schedules.ReduceLROnPlateau(ours, **kwargs)
        theirs_schedule = torch_schedules.ReduceLROnPlateau(theirs, **kwargs)
        for metric in metrics:
            ours_schedule.step(metric)
            theirs_schedule.step(metric)
            assert ours.lr == pytest.approx(theirs.param_groups[0]["lr"], rel=1e-12), (kwargs, metric)
    assert ours.lr < 0.1                                                        # it did reduce


def test_a_nan_metric_is_never_an_improvement():
    model = gn.Sequential([gn.Dense(2, 2, rng=0)])
    opt = gn.SGD(model, lr=0.1)
    schedule = gn.schedules.ReduceLROnPlateau(opt, patience=1)
    for metric in (1.0, float("nan"), float("nan")):
        schedule.step(metric)
    assert schedule.best == 1.0 and opt.lr == pytest.approx(0.01)


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
def test_state_dict_resumes_the_same_rates(schedule):
    """Ten steps, the state saved (as JSON), a new optimizer and schedule loaded from it: the next rates
    equal those of the run that went on."""
    import json
    make_ours, _ = SCHEDULES[schedule]

    def fresh():
        opt = gn.Adam(gn.Sequential([gn.Dense(2, 2, rng=0)]), lr=0.01)
        return opt, make_ours(opt)
    opt, running = fresh()
    for _ in range(10):
        running.step()
    saved = json.loads(json.dumps(running.state_dict()))
    opt_b, resumed = fresh()
    resumed.load_state_dict(saved)
    assert opt_b.lr == opt.lr and opt_b.betas == opt.betas
    for _ in range(10):
        running.step()
        resumed.step()
        assert opt_b.lr == opt.lr and opt_b.betas == opt.betas


def test_bad_arguments_get_one_clear_line():
    model = gn.Sequential([gn.Dense(2, 2, rng=0)])
    opt = gn.SGD(model, lr=0.1)
    other = gn.SGD(gn.Sequential([gn.Dense(2, 2, rng=1)]), lr=0.1)
    S = gn.schedules
    cases = [(lambda: S.StepLR(opt, step_size=0), "StepLR: step_size must be an int of at least 1"),
             (lambda: S.MultiStepLR(opt, [5, 3]), "MultiStepLR: milestones must be a list of increasing"),
             (lambda: S.CosineAnnealingLR(opt, T_max=0), "CosineAnnealingLR: T_max must be an int of at least 1"),
             (lambda: S.ExponentialLR(opt, gamma=-0.5), r"ExponentialLR: gamma must be in \(0"),
             (lambda: S.LinearLR(opt, start_factor=0.0), r"LinearLR: start_factor must be in \(0"),
             (lambda: S.ReduceLROnPlateau(opt, patience=-1),
              "ReduceLROnPlateau: patience must be an int of at least 0"),
             (lambda: S.ReduceLROnPlateau(opt, factor=1.0), r"ReduceLROnPlateau: factor must be in \(0"),
             (lambda: S.OneCycleLR(opt, max_lr=0.1), "OneCycleLR: give total_steps, or epochs and steps_per_epoch"),
             (lambda: S.OneCycleLR(gn.Adagrad(model), max_lr=0.1, total_steps=5),
              "OneCycleLR: cycle_momentum needs an optimizer with momentum or betas"),
             (lambda: S.SequentialLR(opt, [S.StepLR(other, 2)], milestones=[]),
              "SequentialLR: every schedule must belong to the same optimizer"),
             (lambda: S.StepLR(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1), 2),
              "StepLR: expected a glassnet optimizer")]
    for make, message in cases:
        with pytest.raises(gn.GlassnetError, match=message):
            make()
    one_cycle = S.OneCycleLR(gn.SGD(model, lr=0.1), max_lr=0.1, total_steps=2)
    one_cycle.step()
    one_cycle.step()
    with pytest.raises(gn.GlassnetError, match="OneCycleLR: stepped 3 times, past total_steps=2"):
        one_cycle.step()
