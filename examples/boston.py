"""Seed 004: Boston housing regression, linear and with one hidden layer, MSE."""
import glassnet as gn

data = gn.datasets.boston()
for arch in ("linear", "mlp"):
    model = gn.presets.build(arch, data.input_shape, 1, seed=0)
    model.fit(data.x_train, data.y_train, epochs=150, batch_size=16, loss="mse", optimizer="adam", lr=0.01,
              seed=0, verbose=False)
    print(f"{arch}: test mse {model.evaluate(data.x_test, data.y_test, loss='mse')[0]:.2f}")
