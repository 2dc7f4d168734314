"""Seed 001's network written the way the seed (and most tutorials) write it:
one image at a time, Python loops over every 3x3 region and every 2x2 pooling window.

It is the baseline for "per-sample training at least 20x faster than the seed-style
loop code"; its arithmetic is the seed's (filters without bias, softmax dense layer).
"""
import numpy as np


class SeedStyleNet:
    """conv 8x3x3 (no bias) -> max pool 2 -> dense 13*13*8 -> 10 -> softmax, on one 28x28 image."""

    def __init__(self, seed=0, filters=8):
        rng = np.random.default_rng(seed)
        self.filters = rng.standard_normal((filters, 3, 3)) / 9
        self.weights = rng.standard_normal((13 * 13 * filters, 10)) / (13 * 13 * filters)
        self.biases = np.zeros(10)

    def train_step(self, image, label, lr=0.005):
        """image: (28, 28); label: int. One forward, backward and SGD update."""
        h, w = image.shape
        conv = np.zeros((h - 2, w - 2, len(self.filters)))
        for i in range(h - 2):
            for j in range(w - 2):
                conv[i, j] = np.sum(image[i:i + 3, j:j + 3] * self.filters, axis=(1, 2))
        pooled = np.zeros((conv.shape[0] // 2, conv.shape[1] // 2, len(self.filters)))
        for i in range(pooled.shape[0]):
            for j in range(pooled.shape[1]):
                pooled[i, j] = np.amax(conv[2 * i:2 * i + 2, 2 * j:2 * j + 2], axis=(0, 1))
        flat = pooled.flatten()
        logits = flat @ self.weights + self.biases
        exp = np.exp(logits - logits.max())
        probs = exp / exp.sum()
        # softmax + cross-entropy: dL/dlogits = probs - onehot
        d_logits = probs.copy()
        d_logits[label] -= 1
        d_flat = self.weights @ d_logits
        self.weights -= lr * np.outer(flat, d_logits)
        self.biases -= lr * d_logits
        d_pooled = d_flat.reshape(pooled.shape)
        d_conv = np.zeros(conv.shape)
        for i in range(pooled.shape[0]):
            for j in range(pooled.shape[1]):
                region = conv[2 * i:2 * i + 2, 2 * j:2 * j + 2]
                for a in range(2):
                    for b in range(2):
                        for f in range(len(self.filters)):
                            if region[a, b, f] == pooled[i, j, f]:
                                d_conv[2 * i + a, 2 * j + b, f] = d_pooled[i, j, f]
        d_filters = np.zeros(self.filters.shape)
        for i in range(h - 2):
            for j in range(w - 2):
                for f in range(len(self.filters)):
                    d_filters[f] += d_conv[i, j, f] * image[i:i + 3, j:j + 3]
        self.filters -= lr * d_filters
        return -np.log(probs[label])
