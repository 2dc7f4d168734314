"""In-process toggle: one model, a module setting switched between two values in turn, interleaved rounds.

    python benchmarks/toggle.py glassnet.nn.layers.depthwise.BLOCK_VALUES 32768 262144 mobilenet_mini:64
    python benchmarks/toggle.py glassnet.nn.layers.conv.DEPTHWISE_ROWS False True mobilenet_mini:64 --infer
    python benchmarks/toggle.py glassnet.training.replicas.MAX_PART 64 25 simple:100 --infer --rounds 30

Where ``ab.py`` compares two revisions (two packages in one process, or two processes), this compares two
values of one setting inside one package and heap: only the setting differs. Each round times ``--steps``
training steps (forward + backward) or inferences with the old value, then with the new (the order swapped
every other round), and prints the medians and new / old. Values are Python literals.
"""
import argparse
import ast
import importlib
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from glassnet.models import presets  # noqa: E402
from glassnet.training.heap import keep_freed_memory  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("setting", help="module.ATTRIBUTE, e.g. glassnet.nn.layers.depthwise.BLOCK_VALUES")
    parser.add_argument("old", type=ast.literal_eval)
    parser.add_argument("new", type=ast.literal_eval)
    parser.add_argument("cases", nargs="+", help="NET:BATCH, a preset and a batch size (input 1x28x28)")
    parser.add_argument("--infer", action="store_true", help="time model.infer instead of training steps")
    parser.add_argument("--rounds", type=int, default=24)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args(argv)
    module_name, attribute = args.setting.rsplit(".", 1)
    module = importlib.import_module(module_name)
    if not hasattr(module, attribute):
        parser.error(f"{module_name} has no attribute {attribute}")
    keep_freed_memory()
    for case in args.cases:
        arch, batch = case.split(":")
        model = presets.build(arch, (1, 28, 28), 10, seed=0, dtype=np.float32)
        x = np.random.default_rng(0).standard_normal((int(batch), 1, 28, 28)).astype(np.float32)
        if args.infer:
            model.eval()          # inference as a user runs it: BatchNorm on its running statistics

        def step():
            if args.infer:
                model.infer(x)
            else:
                out = model.forward(x)
                model.backward(np.full(out.shape, 1.0 / out.size, np.float32), input_grad=False)

        def timed(value):
            setattr(module, attribute, value)
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            return (time.perf_counter() - start) / args.steps * 1e3
        times = {"old": [], "new": []}
        for value in (args.old, args.new):                 # warm-up with each
            setattr(module, attribute, value)
            step()
        for round_ in range(args.rounds):
            order = ("old", "new") if round_ % 2 == 0 else ("new", "old")
            for side in order:
                times[side].append(timed(args.old if side == "old" else args.new))
        setattr(module, attribute, args.new)
        old, new = statistics.median(times["old"]), statistics.median(times["new"])
        kind = "inference" if args.infer else "training step"
        print(f"{case} {kind}: {args.setting} = {args.old!r}: {old:.3f} ms, = {args.new!r}: {new:.3f} ms, "
              f"new / old {new / old:.3f}")


if __name__ == "__main__":
    main()
