"""``glassnet sweep``: one training run per combination of settings, on Ray Tune.

Every combination of ``--arch``, ``--lr``, ``--batch-size``, ``--optimizer``, ``--schedule``,
``--warmup-epochs``, ``--weight-decay``, ``--label-smoothing`` and ``--clip-norm`` is a trial: a
glassnet model trained epoch by epoch, reporting its validation loss and accuracy after each
epoch (and a checkpoint of the model). ``--scheduler asha`` lets Ray Tune's ASHA stop trials that
fall behind. The sweep ends with a table sorted by validation accuracy (also written as
``results.csv`` and ``results.json``) and the best trial's model as ``best.glassnet``.

Ray runs locally on 127.0.0.1 with no dashboard, or joins an existing cluster (``--address``).
Nothing is written outside ``--out``: Ray's temporary folder, Tune's storage and the results all
live there, and Ray's token authentication (which writes ``~/.ray``) is off for a local run. A
sweep interrupted and started again with the same ``--out`` resumes: finished trials are kept.
"""
import csv
import itertools
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..errors import GlassnetError
from ..atomic import write_text

EXPERIMENT = "sweep"
AXES = ("arch", "lr", "batch_size", "optimizer", "schedule", "warmup_epochs", "weight_decay", "label_smoothing",
        "clip_norm")
COLUMNS = ["trial", *AXES, "epochs_run", "val_accuracy", "val_loss", "status"]


def _ray():
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")          # else Ray 2.60 writes ~/.ray/auth_token
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    try:
        import ray
        from ray import tune
    except ImportError:
        raise GlassnetError("glassnet sweep needs Ray Tune: pip install 'glassnet[sweep]'") from None
    return ray, tune


def train_trial(config):
    """One trial, run by a Ray worker: train ``config["epochs"]`` epochs, report after each."""
    from ray import tune

    from ..data import datasets
    from ..models import presets
    from ..files import serialization
    from .recipe import fit_arguments
    trial = config["trial"]                         # one value of each of AXES
    data = datasets.load(config["dataset"])
    settings = dict(presets.DEFAULTS[config["dataset"]], **trial, epochs=config["epochs"], seed=config["seed"],
                    dtype=config["dtype"], dataset=config["dataset"], validation_split=None)
    model = presets.build_for_dataset(data, settings)
    tools = fit_arguments(model, settings, len(data.y_train))   # one optimizer and schedule for every epoch
    rng = np.random.default_rng(config["seed"])
    for epoch in range(1, config["epochs"] + 1):
        model.fit(data.x_train, data.y_train, epochs=1, batch_size=trial["batch_size"], seed=rng, verbose=False,
                  **tools)
        val_loss, val_accuracy = model.evaluate(data.x_test, data.y_test, loss=settings["loss"])
        with tempfile.TemporaryDirectory() as folder:
            serialization.save(model, Path(folder) / "model.glassnet")
            tune.report({"epoch": epoch, "val_loss": float(val_loss), "val_accuracy": float(val_accuracy)},
                        checkpoint=tune.Checkpoint.from_directory(folder))


def progress_printer(tune, log):
    """A Tune callback printing each trial's validation figures as its epochs end."""
    class Progress(tune.Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            settings = trial.config["trial"]
            log(f"{trial.trial_id} {settings['arch']} lr {settings['lr']:g} batch {settings['batch_size']} "
                f"{settings['optimizer']}{toolkit_words(settings)}: epoch {result['epoch']}  "
                f"val acc {result['val_accuracy']:.4f}  "
                f"val loss {result['val_loss']:.4f}")
    return Progress()


def toolkit_words(trial):
    """", cosine, wd 0.05, smoothing 0.1" for a trial's toolkit axes ("" when it uses none)."""
    words = [trial.get("schedule") or ""]
    words += [f"warm-up {trial['warmup_epochs']}"] if trial.get("warmup_epochs") else []
    words += [f"wd {trial['weight_decay']:g}"] if trial.get("weight_decay") else []
    words += [f"smoothing {trial['label_smoothing']:g}"] if trial.get("label_smoothing") else []
    words += [f"clip {trial['clip_norm']:g}"] if trial.get("clip_norm") else []
    return "".join(f", {word}" for word in words if word)


def grid(archs, lrs, batch_sizes, optimizers, schedules=(None,), weight_decays=(None,), smoothings=(0.0,),
         warmups=(0,), clip_norms=(None,)):
    return [dict(zip(AXES, values))
            for values in itertools.product(archs, lrs, batch_sizes, optimizers, schedules, warmups, weight_decays,
                                            smoothings, clip_norms)]


def run_sweep(dataset, archs, lrs, batch_sizes, optimizers, epochs, out, scheduler=None, parallel=2,
              address=None, seed=0, dtype="float32", log=print, schedules=(None,), weight_decays=(None,),
              smoothings=(0.0,), warmups=(0,), clip_norms=(None,)):
    """Run (or resume) the sweep; returns its rows (dicts with ``COLUMNS``), best first."""
    ray, tune = _ray()
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    trials = grid(archs, lrs, batch_sizes, optimizers, schedules, weight_decays, smoothings, warmups, clip_norms)
    link = None
    if address:
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    else:
        temp_dir, link = ray_folder(out)
        ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, num_cpus=parallel,
                 _temp_dir=str(temp_dir), object_store_memory=100 * 1024 ** 2, log_to_driver=False,
                 configure_logging=False)
    try:
        trainable = tune.with_parameters(train_trial)
        storage = out / EXPERIMENT
        if tune.Tuner.can_restore(str(storage)):
            log(f"resuming the sweep in {storage}")
            tuner = tune.Tuner.restore(str(storage), trainable=trainable, resume_unfinished=True,
                                       resume_errored=False, restart_errored=False)
        else:
            asha = tune.schedulers.ASHAScheduler(time_attr="epoch", max_t=epochs, grace_period=1, reduction_factor=2)
            tuner = tune.Tuner(
                trainable,
                param_space={"dataset": dataset, "epochs": epochs, "seed": seed, "dtype": dtype,
                             "trial": tune.grid_search(trials)},
                tune_config=tune.TuneConfig(metric="val_accuracy", mode="max", max_concurrent_trials=parallel,
                                            scheduler=asha if scheduler == "asha" else None),
                run_config=tune.RunConfig(name=EXPERIMENT, storage_path=str(out), verbose=0,
                                          checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                                          callbacks=[progress_printer(tune, log)]))
        tuner.fit()
    finally:
        ray.shutdown()
        if link is not None:
            link.unlink()
            link.parent.rmdir()
    return report(storage, epochs, out, log)


def ray_folder(out):
    """(Ray's temporary folder, a link to remove afterwards or None): ``out/ray``. Ray puts Unix sockets
    some 70 characters deep in it and a socket path may not exceed 107 bytes, so a longer ``out`` is
    reached through a short symbolic link in the system's temporary folder (the files stay in ``out``)."""
    folder = out / "ray"
    folder.mkdir(exist_ok=True)
    if len(str(folder)) <= 36:
        return folder, None
    link = Path(tempfile.mkdtemp(prefix="gn-")) / "ray"
    link.symlink_to(folder, target_is_directory=True)
    return link, link


def report(storage, epochs, out, log):
    """The table, CSV, JSON and best model, read from Tune's storage folder: one folder per trial with
    ``params.json`` (its settings), ``result.json`` (one line per reported epoch), ``error.txt`` when
    it failed and its latest ``checkpoint_*``. (Read from the folder rather than from ``Tuner.fit()``'s
    result grid, which after a resume can miss trials that had not started before the interruption.)"""
    rows, best = [], None
    for folder in sorted(path for path in storage.iterdir() if (path / "params.json").is_file()):
        settings = {"schedule": None, "weight_decay": None, "label_smoothing": 0.0, "warmup_epochs": 0,   # older
                    "clip_norm": None,                                                                # sweeps
                    **json.loads((folder / "params.json").read_text())["trial"]}
        results_file = folder / "result.json"
        lines = results_file.read_text().splitlines() if results_file.is_file() else []
        history = [json.loads(line) for line in lines if line.strip()]
        last = history[-1] if history else {}
        epochs_run = int(last.get("epoch", 0))
        if (folder / "error.txt").is_file():
            error = [line for line in (folder / "error.txt").read_text().splitlines() if line.strip()]
            status = "failed: " + (error[-1][:200] if error else "unknown error")
        else:
            status = "done" if epochs_run >= epochs else "stopped early" if history else "not run"
        row = {"trial": folder.name.split("_trial=")[0], **settings, "epochs_run": epochs_run,
               "val_accuracy": last.get("val_accuracy"), "val_loss": last.get("val_loss"), "status": status,
               "curve": [entry["val_accuracy"] for entry in history]}
        rows.append(row)
        checkpoints = sorted(folder.glob("checkpoint_*/model.glassnet"))
        if not status.startswith("failed") and checkpoints and row["val_accuracy"] is not None:
            if best is None or row["val_accuracy"] > best[0]["val_accuracy"]:
                best = (row, checkpoints[-1])
    rows.sort(key=lambda row: (row["val_accuracy"] is None, -(row["val_accuracy"] or 0.0)))
    write_text(out / "results.json", json.dumps(rows, indent=2))
    with open(out / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")   # the curves are in the JSON
        writer.writeheader()
        writer.writerows(rows)
    log(table(rows))
    if best is not None:
        shutil.copyfile(best[1], out / "best.glassnet.tmp")
        os.replace(out / "best.glassnet.tmp", out / "best.glassnet")
        log(f"best: {best[0]['arch']} lr {best[0]['lr']} batch {best[0]['batch_size']} {best[0]['optimizer']}"
            f"{toolkit_words(best[0])}, validation accuracy {best[0]['val_accuracy']:.4f}; "
            f"model saved to {out / 'best.glassnet'}")
    log(f"written: {out / 'results.csv'}, {out / 'results.json'}")
    return rows


def table(rows):
    toolkit = any(toolkit_words(row) for row in rows)
    lines = [f"{'arch':8} {'lr':>9} {'batch':>5} {'optimizer':9} " + (f"{'toolkit':24} " if toolkit else "")
             + f"{'epochs':>6} {'val acc':>8} {'val loss':>9}  status"]
    for row in rows:
        accuracy = "" if row["val_accuracy"] is None else f"{row['val_accuracy']:.4f}"
        loss = "" if row["val_loss"] is None else f"{row['val_loss']:.4f}"
        extra = f"{toolkit_words(row).lstrip(', ') or '-':24} " if toolkit else ""
        lines.append(f"{row['arch']:8} {row['lr']:>9g} {row['batch_size']:>5} {row['optimizer']:9} {extra}"
                     f"{row['epochs_run']:>6} {accuracy:>8} {loss:>9}  {row['status']}")
    return "\n".join(lines)
