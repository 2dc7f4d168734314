"""fit / evaluate / predict / summary, and the small datasets' accuracy floors."""
import numpy as np
import pytest

import glassnet as gn


class CountingDense(gn.Dense):
    """Records every sample row it sees in training mode (rows are tagged by their first feature)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen = []

    def forward(self, x):
        if self.training:
            self.seen.extend(np.asarray(x)[:, 0].tolist())
        return super().forward(x)


def test_each_epoch_visits_every_sample_exactly_once_in_a_new_order():
    x = np.arange(10, dtype=np.float64)[:, None] * np.ones((1, 3))
    y = np.arange(10) % 2
    layer = CountingDense(3, 2, rng=0)
    model = gn.Sequential([layer])
    history = model.fit(x, y, epochs=3, batch_size=4, optimizer="sgd", lr=0.01, seed=5, verbose=False)
    epochs = [layer.seen[i * 10:(i + 1) * 10] for i in range(3)]
    for order in epochs:
        assert sorted(order) == list(range(10))
    assert epochs[0] != epochs[1]
    assert len(history["loss"]) == 3 and len(history["accuracy"]) == 3


def test_batch_size_one_is_per_sample_sgd():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((6, 3)), rng.integers(0, 2, 6)
    model = gn.Sequential([gn.Dense(3, 2, rng=0)])
    manual = gn.Sequential([gn.Dense(3, 2, rng=0)])
    model.fit(x, y, epochs=1, batch_size=1, optimizer="sgd", lr=0.1, shuffle=False, verbose=False)
    loss, opt = gn.SoftmaxCrossEntropy(), gn.SGD(manual, lr=0.1)
    for i in range(6):
        loss.forward(manual.forward(x[i:i + 1]), y[i:i + 1])
        manual.backward(loss.backward())
        opt.step()
    np.testing.assert_allclose(model[0].params["weight"], manual[0].params["weight"], rtol=1e-14)


def test_history_and_evaluate_agree():
    data = gn.datasets.iris()
    model = gn.presets.build("linear", data.input_shape, 3, seed=0)
    history = model.fit(data.x_train, data.y_train, epochs=3, batch_size=16, optimizer="adam", lr=0.05,
                        validation_data=(data.x_test, data.y_test), seed=0, verbose=False)
    loss, accuracy = model.evaluate(data.x_test, data.y_test)
    assert history["val_loss"][-1] == pytest.approx(loss, rel=1e-12)
    assert history["val_accuracy"][-1] == accuracy


def test_fit_rejects_mismatched_and_non_finite_data():
    model = gn.Sequential([gn.Dense(3, 2, rng=0)])
    with pytest.raises(ValueError, match=r"fit: x and y hold different numbers of samples"):
        model.fit(np.zeros((4, 3)), np.zeros(3, dtype=int), verbose=False)
    bad = np.zeros((4, 3))
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match=r"NaN or Inf"):
        model.fit(bad, np.zeros(4, dtype=int), verbose=False)


def test_summary_lists_layers_shapes_and_total(capsys):
    model = gn.presets.build("vz", (1, 28, 28), 10, seed=0)
    model.summary()
    text = capsys.readouterr().out
    assert "(N, 8, 26, 26)" in text and "(N, 8, 13, 13)" in text and "(N, 1352)" in text
    assert f"total parameters: {8 * 9 + 8 + 1352 * 10 + 10:,}" in text


def test_xor_is_solved():
    data = gn.datasets.xor()
    settings = gn.presets.DEFAULTS["xor"]
    model = gn.presets.build("xor", (2,), 1, seed=settings["seed"])
    model.fit(data.x_train, data.y_train, epochs=settings["epochs"], batch_size=4, loss="mse",
              optimizer="sgd", lr=settings["lr"], seed=0, verbose=False)
    outputs = model.predict(data.x_test)[:, 0]
    assert np.all((outputs > 0.5) == (data.y_test[:, 0] == 1)), outputs


@pytest.mark.parametrize("name, floor", [("iris", 0.93), ("digits", 0.98)])
def test_accuracy_floor_with_the_dataset_defaults(name, floor):
    data = gn.datasets.load(name)
    s = gn.presets.DEFAULTS[name]
    model = gn.presets.build(s["arch"], data.input_shape, len(data.class_names), seed=0)
    model.fit(data.x_train, data.y_train, epochs=s["epochs"], batch_size=s["batch_size"], optimizer=s["optimizer"],
              lr=s["lr"], seed=0, verbose=False)
    assert model.evaluate(data.x_test, data.y_test)[1] >= floor
