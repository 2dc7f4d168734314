"""Integrated gradients, 50 steps, on a batch of 16 MNIST-5k images: glassnet against Captum on the
PyTorch twin (gn.to_torch), in one run, float32, median of 5; also prints the two maps' largest
relative difference. Usage: python benchmarks/attribution_speed.py"""
import statistics
import time

import numpy as np
import torch
from captum.attr import IntegratedGradients

import glassnet as gn
from glassnet.models import presets


def median_seconds(run, repeats=5):
    run()                                                     # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main():
    data = gn.datasets.mnist5k()
    model = presets.build("lenet", data.input_shape, 10, seed=0, dtype=np.float32).eval()
    twin = gn.to_torch(model).eval()
    x = data.x_test[:16].astype(np.float32)
    targets = data.y_test[:16].astype(np.int64)
    ig = IntegratedGradients(twin)
    ours = gn.attribute(model, x, targets, method="integrated_gradients", steps=50)
    theirs = ig.attribute(torch.from_numpy(x), target=targets.tolist(), n_steps=50).detach().numpy()
    gap = float(np.abs(ours - theirs).max() / np.abs(theirs).max())
    glassnet_s = median_seconds(lambda: gn.attribute(model, x, targets, method="integrated_gradients", steps=50))
    captum_s = median_seconds(lambda: ig.attribute(torch.from_numpy(x), target=targets.tolist(), n_steps=50))
    print(f"integrated gradients, 50 steps, 16 MNIST images (800 points), lenet, float32, "
          f"torch threads {torch.get_num_threads()}")
    print(f"glassnet {glassnet_s * 1000:.1f} ms, Captum {captum_s * 1000:.1f} ms, "
          f"glassnet / Captum time {glassnet_s / captum_s:.2f}; largest difference {gap:.2e} of the map's scale")


if __name__ == "__main__":
    main()
