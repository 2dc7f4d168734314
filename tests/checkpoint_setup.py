"""The run the checkpoint tests interrupt and resume: a small CNN with Dropout (whose generator
must be restored too) trained with Adam on a fixed synthetic set. Imported by the tests and
by the subprocesses they kill."""
import numpy as np

import glassnet as gn

SETTINGS = dict(epochs=3, batch_size=16, optimizer="adam", lr=0.01, seed=11, verbose=False)


def make_model():
    rng = np.random.default_rng(5)
    return gn.Sequential([gn.Conv2D(1, 4, 3, rng=rng), gn.ReLU(), gn.MaxPool2D(2), gn.Flatten(),
                          gn.Dropout(0.3, rng=7), gn.Dense(36, 3, rng=rng)])


def make_data():
    """90 samples (1, 8, 8) with labels 0..2 from two simple image features."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((90, 1, 8, 8))
    return x, (x[:, 0, :4].sum(axis=(1, 2)) > 0).astype(int) + (x[:, 0, 4:].mean(axis=(1, 2)) > 0.2)
