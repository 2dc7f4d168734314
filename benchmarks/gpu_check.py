"""One training step and one inference pass on the GPU: glassnet on CuPy beside glassnet on NumPy (the CPU)
and PyTorch on CUDA, the same nets, weights and batches (float32), repeats interleaved.

    python benchmarks/gpu_check.py [--batch-sizes 64,256] [--repeats 5]

Run by benchmarks/gpu_check.sh on a lent GPU machine. Prints images/s per framework and the ratios, the GPU
(CuPy's device name) and the CPU; a framework that is missing is reported and left out, never guessed.
"""
import argparse
import platform

import numpy as np

from glassnet.apps.benchmark.cases import CASES, batch, glassnet_trainer, torch_trainer
from glassnet.apps.benchmark.measure import side_by_side


def frameworks():
    """{name: (to_device(array), synchronize())} for what this machine has: numpy always; cupy, torch-cuda."""
    found = {"glassnet numpy": (lambda a: a, lambda: None)}
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() > 0:
            found["glassnet cupy"] = (cupy.asarray, cupy.cuda.Device().synchronize)
    except Exception as error:             # no CuPy, no driver, no GPU: say so
        print(f"glassnet on CuPy left out: {error}")
    try:
        import torch
        if torch.cuda.is_available():
            found["pytorch cuda"] = (lambda a: torch.as_tensor(a).cuda(), torch.cuda.synchronize)
        else:
            print("PyTorch on CUDA left out: torch.cuda.is_available() is False")
    except ImportError as error:
        print(f"PyTorch on CUDA left out: {error}")
    return found


def steps_for(case, batch_size, name, to_device, synchronize):
    """(train step, inference) closures for one framework, each ending in a device synchronisation."""
    x, y = batch(case, np.float32, batch_size=batch_size)
    if name == "pytorch cuda":
        import torch
        model, train_step, infer = torch_trainer(case, np.float32)
        model.cuda()
        x, y = to_device(x), torch.as_tensor(y).cuda()
    else:
        model, train_step, infer = glassnet_trainer(case, np.float32)
        if name == "glassnet cupy":
            import cupy
            model.to(cupy)
            x = to_device(x)

    def train():
        train_step(x, y)
        synchronize()

    def inference():
        infer(x)
        synchronize()
    return train, inference


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", default="64,256")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.5)
    args = parser.parse_args()
    found = frameworks()
    print(f"CPU: {platform.processor() or platform.machine()}; frameworks: {', '.join(found)}")
    if "glassnet cupy" in found:
        import cupy
        print("GPU:", cupy.cuda.runtime.getDeviceProperties(0)["name"].decode())
    for case in (CASES["simple"], CASES["lenet"]):
        for batch_size in map(int, args.batch_sizes.split(",")):
            pairs = {name: steps_for(case, batch_size, name, *hooks) for name, hooks in found.items()}
            for kind, index in (("train", 0), ("infer", 1)):
                rates = side_by_side({name: pair[index] for name, pair in pairs.items()}, batch_size,
                                     args.repeats, args.seconds)
                medians = {name: rate["median"] for name, rate in rates.items()}
                base = medians["glassnet numpy"]
                print(f"{case.name} b{batch_size} {kind}: " + "; ".join(
                    f"{name} {value:,.0f} img/s ({value / base:.2f}x numpy)" for name, value in medians.items()))


if __name__ == "__main__":
    main()
