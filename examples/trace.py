"""Watch one forward and backward pass of a small CNN, every array printed, then one SGD step.

    python examples/trace.py
"""
import numpy as np

import glassnet as gn

rng = np.random.default_rng(0)
model = gn.Sequential([gn.Conv2D(1, 2, 3, rng=rng), gn.ReLU(), gn.MaxPool2D(2), gn.Flatten(),
                       gn.Dense(8, 3, rng=rng)])
image = rng.integers(0, 4, (1, 1, 6, 6)).astype(np.float64)   # one 6x6 image, (N, C, H, W)
record = gn.trace(model, image, np.array([2]), gn.SoftmaxCrossEntropy(), optimizer=gn.SGD(model, lr=0.1))
print(record.text())
