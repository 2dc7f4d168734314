"""Seed 002: XOR with a 2-2-1 sigmoid network trained by SGD on MSE."""
import glassnet as gn

data = gn.datasets.xor()
model = gn.presets.build("xor", (2,), 1, seed=1)
model.fit(data.x_train, data.y_train, epochs=3000, batch_size=4, loss="mse", optimizer="sgd", lr=2.0,
          seed=0, verbose=False)
outputs = model.predict(data.x_test)[:, 0]
for row, target, out in zip(data.x_test, data.y_test[:, 0], outputs):
    print(f"{row.astype(int).tolist()} -> {out:.3f} (target {int(target)})")
print("solved:", bool(all((outputs > 0.5) == (data.y_test[:, 0] == 1))))
