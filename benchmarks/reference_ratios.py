"""The reference nets' speed against PyTorch, training and inference, at the batches issue 28 names.

    python benchmarks/reference_ratios.py                 # simple:100 simple:256 lenet:64 lenet:256
    python benchmarks/reference_ratios.py lenet:128

Float32, 2 threads (BLAS, glassnet's batch split, PyTorch), the same net, weights and batch in both;
glassnet's and PyTorch's steps interleaved, median of 7 repeats (``measure.side_by_side``). Prints ms per
step and glassnet's speed as a multiple of PyTorch's (above 1: glassnet is faster).
"""
import dataclasses
import os
import sys

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from glassnet.apps.benchmark import cases, measure

SETTINGS = [("simple", 100), ("simple", 256), ("lenet", 64), ("lenet", 256)]


def main(argv, repeats=7, seconds=0.4):
    threadpool_limits(2)
    torch.set_num_threads(2)
    os.environ["GLASSNET_THREADS"] = "2"
    settings = [(arch, int(size)) for arch, size in (text.split(":") for text in argv)] or SETTINGS
    for arch, size in settings:
        case = dataclasses.replace(cases.CASES[arch], batch_size=size)
        x, y = cases.batch(case, np.float32)
        model, glass_train, glass_infer = cases.glassnet_trainer(case, np.float32)
        twin, torch_train, torch_infer = cases.torch_trainer(case, np.float32)
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        train = measure.side_by_side({"g": lambda: glass_train(x, y), "t": lambda: torch_train(tx, ty)}, size,
                                    repeats, seconds)
        model.eval()
        twin.eval()
        infer = measure.side_by_side({"g": lambda: glass_infer(x), "t": lambda: torch_infer(tx)}, size, repeats,
                                      seconds)
        line = [f"{arch:7} b{size:<4}"]
        for kind, figures in (("train", train), ("infer", infer)):
            glass, theirs = figures["g"]["median"], figures["t"]["median"]
            line.append(f"{kind}: glassnet {size / glass * 1e3:7.2f} ms, PyTorch {size / theirs * 1e3:7.2f} ms, "
                        f"speed {glass / theirs:.2f}x")
        print(" | ".join(line), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
