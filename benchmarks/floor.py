"""How fast glassnet could train if everything but its matrix products cost nothing, beside PyTorch.

    python benchmarks/floor.py                      # simple b100, lenet b64, both at b256
    python benchmarks/floor.py --repeats 9 lenet:256

glassnet computes a convolution as im2col + one GEMM, and its backward as two more GEMMs
(dW = dy @ cols^T, dcols = W^T @ dy; the first layer needs no dcols); a Dense layer is three
GEMMs likewise. This script times exactly those products, on operands of the shapes one
training step of the net multiplies (float32, random values), with NumPy's BLAS:
- "whole": the whole batch, BLAS on every thread (the path for batches under 96);
- "split": the batch cut in two halves multiplied at once on two threads, BLAS at 1 thread each
  (the path of replicas.py for batches of 96 and more).
The faster of the two is the *floor*: the step time glassnet's method cannot go under on this
machine with this BLAS. PyTorch's whole training step and glassnet's are timed in the same run,
interleaved with the floor, median of the repeats. The last column, PyTorch ms / floor ms, is the
largest speed-up over PyTorch glassnet could show if im2col, pooling, ReLU, the loss and the
optimizer all took no time at all.
"""
import argparse
import dataclasses
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from glassnet.apps.benchmark import measure  # noqa: E402
from glassnet.apps.benchmark.cases import CASES, INPUT_SHAPE, batch, glassnet_trainer, torch_trainer  # noqa: E402
from glassnet.nn.layers import Conv2D, Dense  # noqa: E402
from glassnet.nn.layers.conv import weight_gradient  # noqa: E402

SETTINGS = [("simple", 100), ("lenet", 64), ("simple", 256), ("lenet", 256)]
TARGETS = {100: 2.0, 64: 2.0, 256: 1.5}          # issue 14's training targets (times PyTorch's speed)
INFER_TARGETS = {"simple": 2.5, "lenet": 1.5}     # issue 28's inference targets (XLA's speed-ups)


def products(model, samples, rng, train=True):
    """The GEMMs of one training step (or with ``train=False`` one inference) on ``samples`` images, as
    zero-argument functions."""
    calls, shape = [], INPUT_SHAPE
    for index, layer in enumerate(model.layers):
        out_shape = layer.output_shape(shape)
        if isinstance(layer, Conv2D):
            F, positions = out_shape[0], samples * out_shape[1] * out_shape[2]
            K = layer.params["weight"][0].size
            weight = rng.standard_normal((F, K)).astype(np.float32)
            cols = rng.standard_normal((K, positions)).astype(np.float32)
            dy_rows = rng.standard_normal((F, positions)).astype(np.float32)
            calls.append(lambda w=weight, c=cols: w @ c)
            if train:
                calls.append(lambda d=dy_rows, c=cols: weight_gradient(d, c, samples))
            if train and index > 0:
                calls.append(lambda w=weight, d=dy_rows: w.T @ d)
        elif isinstance(layer, Dense):
            weight = rng.standard_normal((layer.in_features, layer.out_features)).astype(np.float32)
            x = rng.standard_normal((samples, layer.in_features)).astype(np.float32)
            dy = rng.standard_normal((samples, layer.out_features)).astype(np.float32)
            calls.append(lambda x=x, w=weight: x @ w)
            if train:
                calls.append(lambda x=x, d=dy: x.T @ d)
            if train and index > 0:
                calls.append(lambda d=dy, w=weight: d @ w.T)
        shape = out_shape
    return calls


def floor_steps(model, samples, controller, train=True):
    """(whole-batch GEMM step, split-batch GEMM step) as zero-argument functions."""
    rng = np.random.default_rng(0)
    whole = products(model, samples, rng, train)
    halves = [products(model, samples // 2, rng, train), products(model, samples - samples // 2, rng, train)]
    pool = ThreadPoolExecutor(max_workers=1)

    def whole_step():
        for call in whole:
            call()

    def split_step():
        with controller.limit(limits=1, user_api="blas"):
            other = pool.submit(lambda: [call() for call in halves[1]])
            for call in halves[0]:
                call()
            other.result()
    return whole_step, split_step


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("settings", nargs="*", help="net:batch, e.g. lenet:64 (default: the four of issue 14)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--infer", action="store_true",
                        help="inference: the forward products only, against PyTorch's inference (issue 28's "
                             "targets: 2.5x on simple, 1.5x on lenet)")
    args = parser.parse_args(argv)
    import torch
    from threadpoolctl import ThreadpoolController, threadpool_info
    controller = ThreadpoolController()
    controller.limit(limits=2, user_api="blas")
    torch.set_num_threads(2)
    settings = [(name, int(size)) for name, size in (s.split(":") for s in args.settings)] or SETTINGS
    blas = "; ".join(f"{p['internal_api']} {p['version']} {p.get('architecture')}" for p in threadpool_info()
                     if p["user_api"] == "blas")
    print(f"float32, 2 threads, median of {args.repeats} interleaved repeats; NumPy {np.__version__} ({blas}); "
          f"PyTorch {torch.__version__}")
    print(f"{'net':7} {'batch':>5} {'pytorch ms':>11} {'target ms':>10} {'glassnet ms':>12} {'GEMMs whole':>12} "
          f"{'GEMMs split':>12} {'floor ms':>9} {'pytorch/floor':>14}")
    for name, size in settings:
        case = dataclasses.replace(CASES[name], batch_size=size)
        x, y = batch(case, np.float32)
        model, glass_train, glass_infer = glassnet_trainer(case, np.float32)
        _, torch_train, torch_infer = torch_trainer(case, np.float32)
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        whole, split = floor_steps(model, size, controller, train=not args.infer)
        if args.infer:
            steps = {"pytorch": lambda: torch_infer(tx), "glassnet": lambda: glass_infer(x)}
        else:
            steps = {"pytorch": lambda: torch_train(tx, ty), "glassnet": lambda: glass_train(x, y)}
        steps.update(whole=whole, split=split)
        rates = measure.side_by_side(steps, 1, args.repeats, 0.3)        # calls per second, interleaved
        ms = {label: 1e3 / figures["median"] for label, figures in rates.items()}
        floor = min(ms["whole"], ms["split"])
        target = ms["pytorch"] / (INFER_TARGETS[name] if args.infer else TARGETS.get(size, 2.0))
        print(f"{name:7} {size:>5} {ms['pytorch']:>11.2f} {target:>10.2f} {ms['glassnet']:>12.2f} "
              f"{ms['whole']:>12.2f} {ms['split']:>12.2f} {floor:>9.2f} {ms['pytorch'] / floor:>14.2f}", flush=True)


if __name__ == "__main__":
    main()
