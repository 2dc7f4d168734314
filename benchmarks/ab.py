"""Interleaved A/B timing of glassnet against an older revision of itself, in one process.

    python benchmarks/ab.py --old 02c19d1            # old revision vs the working tree
    python benchmarks/ab.py --old HEAD~1 --repeats 9 --dtype float64
    python benchmarks/ab.py --old HEAD~1 lenet:64 simple:100   # only these NET:BATCH settings
    python benchmarks/ab.py --old HEAD~1 --repeats 3 resnet50:8   # a large net (models/imagenet.py), 224x224
    python benchmarks/ab.py --old HEAD~1 --processes lenet:64     # each version alone in its own processes

The old revision's ``src/glassnet`` is exported with ``git archive`` into a temporary folder and
imported as the package ``glassnet_old`` (glassnet imports itself relatively, so the copy is
self-contained). Both versions build the same network from the same seed and train on the same
batch; old and new steps alternate, repeat after repeat, so machine noise hits both alike.
Prints the median milliseconds per training step and per inference of each, and new / old.

Two versions in one process meet each other: OpenBLAS's threads spin a while after one version's work,
and a change to how the batch is cut over threads (``training/replicas.py``) changes the threads' state
for the other version too. Measured on lenet b64 with batch parts of 32: in one process the result
depended on which version ran first; in separate processes it was clear. ``--processes`` runs each
repeat as a fresh process per version, old then new, each timing every setting once.
"""
import argparse
import dataclasses
import importlib
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import glassnet  # noqa: E402  (the working tree)

SETTINGS = [("simple", 1), ("simple", 64), ("simple", 100), ("simple", 256),
            ("lenet", 1), ("lenet", 64), ("lenet", 256)]


def import_revision(revision, folder):
    """``src/glassnet`` at ``revision`` as the package ``glassnet_old``."""
    export_revision(revision, folder)
    return import_exported(folder)


def export_revision(revision, folder):
    """``src/glassnet`` at ``revision`` written to ``folder/glassnet_old``."""
    archive = Path(folder) / "old.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), revision, "src/glassnet"], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    (Path(folder) / "src" / "glassnet").rename(Path(folder) / "glassnet_old")


def import_exported(folder):
    sys.path.insert(0, str(folder))
    return importlib.import_module("glassnet_old")


def benchmark_cases(package):
    """The package's benchmark cases: ``apps.benchmark.cases`` since the house in wings, ``benchmark.cases`` before."""
    for where in ("apps.benchmark.cases", "benchmark.cases"):
        try:
            return importlib.import_module(f"{package.__name__}.{where}")
        except ModuleNotFoundError:
            continue
    raise SystemExit(f"{package.__name__} has no benchmark cases (apps/benchmark/cases.py)")


def setting(text):
    """'lenet:64' -> ("lenet", 64)."""
    arch, _, size = text.partition(":")
    if not size.isdigit():
        raise argparse.ArgumentTypeError(f"expected NET:BATCH such as lenet:64. Received: {text!r}")
    return arch, int(size)


def per_call_seconds(function, calls):
    start = time.perf_counter()
    for _ in range(calls):
        function()
    return (time.perf_counter() - start) / calls


def calls_for(function, target_seconds=0.25):
    """How many calls take about ``target_seconds`` (at least 1)."""
    once = per_call_seconds(function, 2)
    return max(1, int(target_seconds / max(once, 1e-6)))


def large_net(package, arch, batch_size, dtype, image_size):
    """A large net of ``glassnet.models.imagenet`` (random weights): (train step, inference) on one batch."""
    presets = importlib.import_module(f"{package.__name__}.models.presets")
    model = presets.build(arch, (3, image_size, image_size), 1000, seed=0, dtype=dtype)
    loss = importlib.import_module(f"{package.__name__}.nn.losses").SoftmaxCrossEntropy()
    optimizer = importlib.import_module(f"{package.__name__}.training.loop").resolve_optimizer(model, "momentum", 0.01)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((batch_size, 3, image_size, image_size)).astype(dtype), rng.integers(0, 1000, batch_size)

    def train_step():
        model.train()
        loss.forward(model.forward(x), y)
        model.backward(loss.backward(), input_grad=False)
        optimizer.step()

    def infer():
        model.eval()
        return model.infer(x)
    return train_step, infer


def steps(package, arch, batch_size, dtype, image_size):
    """(training step, inference) of ``package`` on one batch of the net ``arch``, each without arguments."""
    cases = benchmark_cases(package)
    if arch not in cases.CASES:
        return large_net(package, arch, batch_size, dtype, image_size)
    case = dataclasses.replace(cases.CASES[arch], batch_size=batch_size)
    x, y = cases.batch(case, dtype)
    model, train_step, infer = cases.glassnet_trainer(case, dtype)

    def train():
        model.train()
        train_step(x, y)

    def evaluate():
        model.eval()             # inference as a user runs it: BatchNorm on its running statistics
        return infer(x)
    return train, evaluate


def compare(packages, arch, batch_size, dtype, repeats, image_size=224):
    """Median seconds per training step and per inference for each package, interleaved."""
    functions = {label: steps(package, arch, batch_size, dtype, image_size) for label, package in packages.items()}
    times = {label: ([], []) for label in packages}
    for kind in (0, 1):
        for label in packages:                      # warm-up, old first (it starts its threads first)
            per_call_seconds(functions[label][kind], 2)
        calls = calls_for(functions["new"][kind])
        for _ in range(repeats):
            for label in packages:
                times[label][kind].append(per_call_seconds(functions[label][kind], calls))
    return {label: (statistics.median(train), statistics.median(infer)) for label, (train, infer) in times.items()}


def child(label, folder, settings, dtype, image_size):
    """``--processes``' child: one package alone in this process; prints [train s, infer s] per setting."""
    from threadpoolctl import threadpool_limits
    threadpool_limits(2)
    package = import_exported(folder) if label == "old" else glassnet
    figures = []
    for arch, batch_size in settings:
        train_step, infer = steps(package, arch, batch_size, dtype, image_size)
        for function in (train_step, infer):
            per_call_seconds(function, 3)                # warm-up: the heap's pages, the threads
        figures.append([per_call_seconds(function, calls_for(function)) for function in (train_step, infer)])
    print(json.dumps(figures))


def compare_in_processes(folder, settings, args):
    """Median seconds per training step and per inference: each repeat a fresh process for old, then one for
    new, so neither version's threads or heap meet the other's."""
    times = {label: [] for label in ("old", "new")}
    for _ in range(args.repeats):
        for label in times:
            command = [sys.executable, __file__, "--child", label, "--old", folder, "--dtype", args.dtype,
                       "--image-size", str(args.image_size)] + [f"{arch}:{size}" for arch, size in settings]
            done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=1800)
            times[label].append(json.loads(done.stdout.strip().splitlines()[-1]))
    return [{label: tuple(statistics.median(run[index][kind] for run in runs) for kind in (0, 1))
             for label, runs in times.items()} for index in range(len(settings))]


def threads_line():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "BLAS: threadpoolctl not installed"
    return "; ".join(f"{pool.get('internal_api')} {pool.get('version')} {pool.get('architecture')} "
                     f"{pool.get('num_threads')} threads" for pool in threadpool_info())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="git revision to compare against (e.g. HEAD~1)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--image-size", type=int, default=224, help="H and W of a large net's input")
    parser.add_argument("--processes", action="store_true",
                        help="each repeat a fresh process per version, old then new, instead of both in one "
                             "process (their BLAS threads and heaps then never meet)")
    parser.add_argument("--child", choices=["old", "new"], help=argparse.SUPPRESS)
    parser.add_argument("settings", nargs="*", type=setting, help="NET:BATCH pairs (default: every reference setting)")
    args = parser.parse_args(argv)
    settings = args.settings or SETTINGS
    if args.child:
        return child(args.child, args.old, settings, np.dtype(args.dtype), args.image_size)
    with tempfile.TemporaryDirectory() as folder:
        if args.processes:
            export_revision(args.old, folder)
            results = compare_in_processes(folder, settings, args)
        else:
            packages = {"old": import_revision(args.old, folder), "new": glassnet}
            results = (compare(packages, arch, batch_size, np.dtype(args.dtype), args.repeats, args.image_size)
                       for arch, batch_size in settings)
        how = "processes, old then new, per repeat" if args.processes else "interleaved repeats in one process"
        print(f"old: {args.old}   new: working tree   dtype {args.dtype}   median of {args.repeats} ({how})")
        print(f"NumPy {np.__version__}; {threads_line()}")
        print(f"{'net':8} {'batch':>5} {'train old ms':>13} {'train new ms':>13} {'new/old':>8} "
              f"{'infer old ms':>13} {'infer new ms':>13} {'new/old':>8}")
        for (arch, batch_size), result in zip(settings, results):
            (old_train, old_infer), (new_train, new_infer) = result["old"], result["new"]
            print(f"{arch:8} {batch_size:>5} {old_train * 1e3:>13.3f} {new_train * 1e3:>13.3f} "
                  f"{new_train / old_train:>8.3f} {old_infer * 1e3:>13.3f} {new_infer * 1e3:>13.3f} "
                  f"{new_infer / old_infer:>8.3f}", flush=True)


if __name__ == "__main__":
    main()
