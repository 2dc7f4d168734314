"""Seed 004: iris with a softmax classifier."""
import glassnet as gn

data = gn.datasets.iris()
model = gn.presets.build("linear", data.input_shape, 3, seed=0)
model.fit(data.x_train, data.y_train, epochs=100, batch_size=16, optimizer="adam", lr=0.05, seed=0, verbose=False)
print(f"test accuracy: {model.evaluate(data.x_test, data.y_test)[1]:.4f}")
