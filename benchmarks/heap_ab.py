"""Interleaved A/B of malloc without and with the pad of ``glassnet/heap.py``: child processes, alternating.

    python benchmarks/heap_ab.py --repeats 7

"old" runs with ``GLASSNET_MALLOC_PAD_MB=0`` (glibc's own settings: large freed blocks go back to
the system), "new" with the default pad. A malloc setting belongs to a whole process, and glibc
stops adjusting its own thresholds once ``mallopt`` has been called, so one process cannot hold
both states faithfully: instead, the parent starts an "old" child, then a "new" child, repeat
after repeat, so machine noise hits both alike. Each child warms up, then times training steps
and inference on each setting and counts page faults per training step. Prints the medians.
"""
import argparse
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

SETTINGS = [("simple", 100), ("lenet", 64), ("simple", 256), ("lenet", 256)]
PADS_MB = {"old": "0", "new": None}                 # None: glassnet's default


def timed(function, calls):
    """(ms per call, page faults per call)."""
    faults, started = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
    for _ in range(calls):
        function()
    return ((time.perf_counter() - started) / calls * 1e3,
            (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / calls)


def child():
    """Time every setting in this process; print {setting: [train ms, faults per step, infer ms]} as JSON."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import numpy as np
    from threadpoolctl import threadpool_limits

    from glassnet.apps.benchmark.cases import CASES, batch, glassnet_trainer
    threadpool_limits(2)
    figures = {}
    for name, size in SETTINGS:
        case = dataclasses.replace(CASES[name], batch_size=size)
        x, y = batch(case, np.float32)
        _, train, infer = glassnet_trainer(case, np.float32)
        for _ in range(3):
            train(x, y)
        calls = max(3, int(0.4 / (timed(lambda: train(x, y), 2)[0] / 1e3)))
        train_ms, faults = timed(lambda: train(x, y), calls)
        infer_ms, _ = timed(lambda: infer(x), 2 * calls)
        figures[f"{name}:{size}"] = [train_ms, faults, infer_ms]
    print(json.dumps(figures))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child()
    runs = {label: [] for label in PADS_MB}
    for _ in range(args.repeats):
        for label, pad in PADS_MB.items():
            env = dict(os.environ)
            env.pop("GLASSNET_MALLOC_PAD_MB", None)
            if pad is not None:
                env["GLASSNET_MALLOC_PAD_MB"] = pad
            done = subprocess.run([sys.executable, __file__, "--child"], env=env, capture_output=True, text=True,
                                  check=True)
            runs[label].append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"float32, 2 threads; old = no pad (glibc's settings), new = glassnet's pad; median of {args.repeats} "
          f"alternating child processes")
    print(f"{'net':7} {'batch':>5} {'train old ms':>13} {'train new ms':>13} {'new/old':>8} {'infer old ms':>13} "
          f"{'infer new ms':>13} {'new/old':>8} {'faults/step old':>16} {'new':>5}")
    for name, size in SETTINGS:
        key = f"{name}:{size}"
        old, new = ([statistics.median(run[key][i] for run in runs[label]) for i in range(3)]
                    for label in ("old", "new"))
        print(f"{name:7} {size:>5} {old[0]:>13.2f} {new[0]:>13.2f} {new[0] / old[0]:>8.3f} {old[2]:>13.2f} "
              f"{new[2]:>13.2f} {new[2] / old[2]:>8.3f} {old[1]:>16.0f} {new[1]:>5.0f}", flush=True)


if __name__ == "__main__":
    main()
