"""The training toolkit from the command line: ``glassnet train --optimizer adamw --weight-decay 0.05
--schedule onecycle --warmup-epochs 1 --clip-norm 1 --label-smoothing 0.1 --early-stopping 3
--validation-split 0.1`` becomes the optimizer, schedule, loss, callbacks and fit arguments below.
The choices are kept in the run's settings (so ``--resume`` rebuilds them)."""
import math

from ..errors import GlassnetError
from ..nn.losses import SoftmaxCrossEntropy
from ..nn.optim import SGD, decay_weights_only
from ..training import schedules
from ..training.early_stopping import EarlyStopping
from ..training.loop import NAMED_OPTIMIZERS

TOOLKIT_KEYS = ("weight_decay", "schedule", "warmup_epochs", "clip_norm", "label_smoothing", "early_stopping",
                "validation_split")
WARMUP_START = 0.1                     # a warm-up starts at a tenth of the rate
PLATEAU = {"factor": 0.5, "patience": 2}
DEFAULT_SPLIT = 0.1                    # held out when early stopping or plateau needs a validation loss


def toolkit_settings(args, epochs):
    """The toolkit options of ``args`` as settings, checked against each other and ``epochs``."""
    settings = {key: getattr(args, key, None) for key in TOOLKIT_KEYS}
    warmup = settings["warmup_epochs"]
    if warmup and warmup >= epochs:
        raise GlassnetError(f"--warmup-epochs {warmup} must be fewer than the {epochs} epochs")
    if settings["validation_split"] is None and (settings["early_stopping"] is not None
                                                 or settings["schedule"] == "plateau"):
        settings["validation_split"] = DEFAULT_SPLIT
    return settings


def make_optimizer(model, name, lr, weight_decay):
    decay = (0.01 if name == "adamw" else 0.0) if weight_decay is None else weight_decay
    extra = {"weight_decay": decay, "decay_filter": decay_weights_only} if decay else {"weight_decay": 0.0}
    if name == "sgd":
        return SGD(model, lr=lr, **extra)
    if name in ("momentum", "nesterov"):
        return SGD(model, lr=lr, momentum=0.9, nesterov=name == "nesterov", **extra)
    return NAMED_OPTIMIZERS[name](model, lr=lr, **extra)


def make_schedule(optimizer, kind, warmup, epochs, batches):
    """(schedule or None, "batch" | "epoch") for the choices; ``batches``: training batches per epoch."""
    warmup = warmup or 0
    if kind == "onecycle":                 # its own warm-up: the rise, over the warm-up epochs if given
        rise = warmup / epochs if warmup else 0.3
        return schedules.OneCycleLR(optimizer, max_lr=optimizer.lr, total_steps=epochs * batches,
                                    pct_start=rise), "batch"
    if kind == "plateau":
        if warmup:
            raise GlassnetError("--warmup-epochs does not combine with --schedule plateau")
        return schedules.ReduceLROnPlateau(optimizer, **PLATEAU), "epoch"
    main = {"step": lambda: schedules.StepLR(optimizer, step_size=max(1, (epochs - warmup) // 3), gamma=0.1),
            "cosine": lambda: schedules.CosineAnnealingLR(optimizer, T_max=epochs - warmup),
            None: lambda: None}[kind]()
    if not warmup:
        return main, "epoch"
    warm = schedules.LinearLR(optimizer, start_factor=WARMUP_START, total_iters=warmup)
    if main is None:
        return warm, "epoch"
    return schedules.SequentialLR(optimizer, [warm, main], milestones=[warmup]), "epoch"


def fit_arguments(model, settings, train_samples):
    """fit's keyword arguments for a run's settings: optimizer, schedule, loss, callbacks, clipping, split."""
    optimizer = make_optimizer(model, settings["optimizer"], settings["lr"], settings.get("weight_decay"))
    split = settings.get("validation_split")
    kept = train_samples - (round(split * train_samples) if split else 0)
    schedule, step = make_schedule(optimizer, settings.get("schedule"), settings.get("warmup_epochs"),
                                   settings["epochs"], math.ceil(kept / settings["batch_size"]))
    loss = settings["loss"]
    if settings.get("label_smoothing"):
        if loss != "softmax_cross_entropy":
            raise GlassnetError(f"--label-smoothing needs a classifier trained with softmax cross-entropy; this "
                                f"run's loss is {loss}")
        loss = SoftmaxCrossEntropy(label_smoothing=settings["label_smoothing"])
    callbacks = []
    if settings.get("early_stopping") is not None:
        callbacks.append(EarlyStopping(monitor="val_loss", patience=settings["early_stopping"]))
    return {"optimizer": optimizer, "schedule": schedule, "schedule_step": step, "loss": loss,
            "callbacks": callbacks, "clip_grad_norm": settings.get("clip_norm"), "validation_split": split}


def describe(settings):
    """The toolkit part of ``glassnet train``'s header line ("" when none is used)."""
    parts = []
    if settings.get("weight_decay"):
        parts.append(f"weight decay {settings['weight_decay']:g}")
    if settings.get("schedule"):
        parts.append(f"{settings['schedule']} schedule")
    if settings.get("warmup_epochs"):
        parts.append(f"{settings['warmup_epochs']} warm-up epoch(s)")
    if settings.get("clip_norm"):
        parts.append(f"gradients clipped to norm {settings['clip_norm']:g}")
    if settings.get("label_smoothing"):
        parts.append(f"label smoothing {settings['label_smoothing']:g}")
    if settings.get("early_stopping") is not None:
        parts.append(f"early stopping after {settings['early_stopping']} epoch(s) without progress")
    if settings.get("validation_split"):
        parts.append(f"{settings['validation_split']:g} held out for validation")
    return "".join(f", {part}" for part in parts)
