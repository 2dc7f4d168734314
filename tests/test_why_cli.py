"""Why, from the command line and for filters: glassnet explain --why writes the attribution over the image
(PNG) and its numbers (.npy, equal to gn.attribute on the same input); visualize_filter makes up inputs that
excite their channel more than noise and more than the dataset's best image; glassnet inspect --filters."""
import numpy as np
import pytest

import glassnet as gn
from glassnet.see.filter_visualization import channel_activation, top_inputs
from test_cli import run as glassnet

Image = pytest.importorskip("PIL.Image")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """lenet on digits, 6 epochs (seeded), saved; and a test digit as a PNG file."""
    folder = tmp_path_factory.mktemp("why")
    data = gn.datasets.digits()
    model = gn.presets.build_for_dataset(data, dict(gn.presets.DEFAULTS["digits"], dataset="digits", data_dir=None,
                                                    dtype="float64", seed=0, checkpoint_every=None))
    model.fit(data.x_train, data.y_train, epochs=6, batch_size=16, optimizer="adam", lr=0.003, seed=0, verbose=False)
    gn.save(model, folder / "digits.glassnet")
    Image.fromarray((data.x_test[3, 0] * 255).round().astype(np.uint8)).save(folder / "digit.png")
    return folder, gn.load(folder / "digits.glassnet"), data


@pytest.mark.parametrize("why, method", [("gradient", "gradient"), ("ig", "integrated_gradients"),
                                         ("occlusion", "occlusion"), ("gradcam", "gradcam"),
                                         ("smoothgrad", "smoothgrad")])
def test_explain_why_writes_the_map_and_its_numbers(trained, tmp_path, why, method):
    folder, model, _ = trained
    result = glassnet("explain", "--model", str(folder / "digits.glassnet"), "--image", str(folder / "digit.png"),
                      "--why", why, "--out", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    values = np.load(tmp_path / "out" / f"why-{why}.npy")
    x = gn.preprocessing.image_to_input(folder / "digit.png", model.metadata["preprocessing"])[0][None]
    label = int(model.predict(x).argmax())
    np.testing.assert_allclose(values, gn.attribute(model, x, label, method=method)[0], rtol=1e-12, atol=1e-15)
    picture = Image.open(tmp_path / "out" / f"why-{why}.png")
    assert picture.size[0] > 500 and f"(output {label})" in result.stdout


def test_explain_why_refuses_half_a_request(trained, tmp_path):
    folder, _, _ = trained
    for arguments, message in ((["--why", "ig", "--out", "o"], "--why needs --model, --image and --out"),
                               (["--model", str(folder / "digits.glassnet"), "--image", str(folder / "digit.png"),
                                 "--why", "ig", "--layer", "2", "--out", "o"], "--layer goes with --why gradcam"),
                               (["--why", "lime"], "argument --why: invalid choice: 'lime'")):
        result = glassnet("explain", *arguments, cwd=tmp_path)
        assert result.returncode != 0 and message in result.stderr and result.stderr.count("\n") == 1


def test_visualized_filters_excite_their_channel_more_than_noise_and_the_best_digit(trained, tmp_path):
    _, model, data = trained
    layer, low, high = 4, float(data.x_train.min()), float(data.x_train.max())     # the second conv's ReLU
    reported = []
    for channel in range(8):
        made = gn.visualize_filter(model, layer, channel, steps=200, value_range=(low, high))
        assert made.shape == (1, 8, 8) and low <= made.min() and made.max() <= high
        noise = 0.01 * np.random.default_rng(channel).standard_normal(made.shape)
        _, (best,) = top_inputs(model, layer, channel, data.x_test, count=1)
        ours, on_noise = channel_activation(model, layer, channel, np.stack([made, noise]))
        reported.append((channel, round(float(ours), 3), round(float(on_noise), 3), round(float(best), 3)))
        if best > 0:                                                       # a channel that ever opens
            assert ours > on_noise
    print("channel, made-up input, noise, best test digit:", reported)
    opened = [(ours, best) for _, ours, _, best in reported if best > 0]
    # gradient ascent finds a local maximum: most channels' made-up input beats every test digit (on this
    # model 6 of 7; channel 6 stops at 0.36 against 0.44), none is left below noise
    assert len(opened) >= 5 and sum(ours > best for ours, best in opened) >= len(opened) - 2
    result = glassnet("inspect", str(trained[0] / "digits.glassnet"), str(trained[0] / "digit.png"), "--out", "pics",
                      "--filters", "4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "visualized_filters.png" in result.stdout and Image.open(tmp_path / "pics" / "visualized_filters.png")
