"""Run under ``mpiexec -n N`` by tests/test_distributed.py (or alone for the one-process reference):
trains a small CNN on scikit-learn's digits with fit(distributed=...) and, on rank 0, saves the
weights and the history to OUT (.npz).

    python tests/mpi_script.py OUT --net bn|dropout|plain|graph [--distributed] [--epochs E]
        [--checkpoint CKPT [--checkpoint-every K] [--resume] [--stop-at EPOCH:BATCH] [--die-at EPOCH:BATCH]]
"""
import argparse
import json
import os
import signal

import numpy as np

import glassnet as gn


def build(kind):
    if kind == "graph":                   # a residual block with BatchNorm in its branch, as resnet_mini's
        x = gn.Input((1, 8, 8))
        stem = gn.ReLU()(gn.Conv2D(1, 6, 3, padding=1, rng=0)(x))
        branch = gn.BatchNorm2D(6)(gn.Conv2D(6, 6, 3, padding=1, bias=False, rng=2)(stem))
        joined = gn.ReLU()(gn.Add()([stem, branch]))
        return gn.Model(x, gn.Dense(6, 10, rng=1)(gn.GlobalAvgPool2D()(joined)))
    layers = [gn.Conv2D(1, 6, 3, padding=1, bias=kind != "bn", rng=0)]
    if kind == "bn":
        layers.append(gn.BatchNorm2D(6))
    layers += [gn.ReLU(), gn.MaxPool2D(2), gn.Flatten()]
    if kind == "dropout":
        layers.append(gn.Dropout(0.3, rng=5))
    layers += [gn.Dense(6 * 4 * 4, 10, rng=1)]
    return gn.Sequential(layers)


class Interrupt(gn.Callback):
    """Stops (StopTraining) or kills this process (SIGKILL, on rank ``rank``) at epoch:batch."""

    def __init__(self, at, kill, rank):
        self.epoch, self.batch = (int(v) for v in at.split(":"))
        self.kill, self.rank = kill, rank

    def on_batch_end(self, event):
        if (event.epoch, event.batch) == (self.epoch, self.batch):
            if not self.kill:
                raise gn.StopTraining
            if self.rank == int(os.environ.get("PMI_RANK", "0")):
                os.kill(os.getpid(), signal.SIGKILL)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--net", default="plain")
    parser.add_argument("--distributed", action="store_true")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--optimizer", default="momentum")
    parser.add_argument("--checkpoint")
    parser.add_argument("--checkpoint-every", type=int)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--stop-at")
    parser.add_argument("--die-at")
    args = parser.parse_args()
    data = gn.datasets.digits()
    model = build(args.net)
    callbacks = []
    if args.stop_at:
        callbacks.append(Interrupt(args.stop_at, False, 0))
    if args.die_at:
        callbacks.append(Interrupt(args.die_at, True, 1))
    history = model.fit(data.x_train, data.y_train, epochs=args.epochs, batch_size=32, optimizer=args.optimizer,
                        lr=0.05, seed=0, verbose=False, distributed=args.distributed, checkpoint=args.checkpoint,
                        checkpoint_every=args.checkpoint_every, resume=args.resume, callbacks=callbacks,
                        log=lambda line: None)
    if int(os.environ.get("PMI_RANK", "0")) == 0:
        np.savez(args.out, history=json.dumps(history), **{k: v for k, v in model.parameters().items()})


if __name__ == "__main__":
    main()
