"""The studio page in a real browser: Debian's Chromium driven by Playwright.

Each test serves a studio on 127.0.0.1 (a free port), opens the page, acts as a person would
(draws with the mouse, uploads a file, clicks a unit, takes a step, trains), checks what the
page shows against the engine, fails on any console error, and takes a screenshot of the view
(into $GLASSNET_SCREENSHOTS, else the test's temporary folder).

Outside CI these tests skip when no Chromium is installed; in CI (CI=true) a missing browser
fails them, and .ci/run installs it first.
"""
import copy

import numpy as np
import pytest

import glassnet as gn
from glassnet.data.preprocessing import load_image
from glassnet.apps.studio.arrays import decode
from glassnet.apps.studio.views import Studio
from browser_setup import browser, shots, sync_api, watch_for_errors  # noqa: F401 (fixtures)
from studio_setup import digits_model, drawn_digit_png, open_page


@pytest.fixture
def studio(tmp_path):
    return Studio(digits_model(), save_dir=tmp_path)


@pytest.fixture
def page(browser, studio):
    """The studio page, open; fails the test on any console error or uncaught page error."""
    with open_page(browser, studio) as page:
        yield page


def capture(page, pattern):
    """A list that receives the JSON reply of every request matching ``pattern`` (read in passing:
    Chromium may drop a reply's body from its cache before a test could ask for it)."""
    replies = []

    def relay(route):
        response = route.fetch()
        replies.append(response.json())
        route.fulfill(response=response)
    page.route(pattern, relay)
    return replies


def draw_stroke(page, points):
    box = page.locator("#pad").bounding_box()
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=10)
    page.mouse.up()


def draw_and_wait(page, studio):
    with page.expect_response("**/api/predict") as predicted:
        draw_stroke(page, [(140, 40), (100, 140), (140, 240), (180, 140), (140, 40)])
    # the debounced replies may overtake each other; the last one sent is the one kept
    sync_api.expect(page.locator("#forward-layers .column")).to_have_count(11)
    return predicted.value


def test_drawing_shows_the_class_predict_gives_on_the_array_the_server_received(page, studio, shots):
    draw_and_wait(page, studio)
    page.wait_for_timeout(300)
    received = studio.last_input
    expected = int(np.argmax(studio.model.predict(received)[0]))
    sync_api.expect(page.locator("#predicted")).to_have_attribute("data-index", str(expected))
    assert received.shape == (1, 1, 8, 8) and received.max() > 0         # the stroke arrived as ink
    bars = page.locator("#topk .bar-row")
    sync_api.expect(bars).to_have_count(5)
    assert bars.first.get_attribute("data-class") == str(expected)
    page.screenshot(path=str(shots / "studio-draw.png"))


def test_uploading_a_png_predicts_as_glassnet_predict_does(page, studio, tmp_path, shots):
    path = tmp_path / "zero.png"
    path.write_bytes(drawn_digit_png())
    replies = capture(page, "**/api/predict")
    page.set_input_files("#file", str(path))
    sync_api.expect(page.locator("#model-input")).to_contain_text("input (1, 8, 8)")
    shown = replies[-1]
    expected_input = load_image(path, studio.model.metadata["preprocessing"])
    np.testing.assert_array_equal(decode(shown["input"]), expected_input)
    np.testing.assert_array_equal(studio.last_input[0], expected_input)
    sync_api.expect(page.locator("#model-input")).to_contain_text("input (1, 8, 8)")
    expected = int(np.argmax(studio.model.predict(expected_input[None])[0]))
    sync_api.expect(page.locator("#predicted")).to_have_attribute("data-index", str(expected))


def test_a_conv_unit_shows_products_that_sum_to_the_feature_map_value(page, studio, shots):
    draw_and_wait(page, studio)
    tile = page.locator("#forward-layers .column").nth(1).locator("canvas").nth(3)   # layer 0, channel 3
    box = tile.bounding_box()
    tile.click(position={"x": box["width"] * (4.5 / 8), "y": box["height"] * (2.5 / 8)})  # row 2, col 4
    sync_api.expect(page.locator("#unit-detail h3")).to_contain_text("unit [3, 2, 4]")
    total = float(page.locator("#unit-sum").get_attribute("data-value"))
    value = float(page.locator("#unit-value").get_attribute("data-value"))
    assert abs(total - value) <= 1e-6 * max(1.0, abs(value))
    engine = studio.model.layers[0].forward(studio.last_input)[0, 3, 2, 4]
    assert value == engine
    sync_api.expect(page.locator("#unit-detail table.numbers")).to_have_count(3)      # field, kernel, products
    page.screenshot(path=str(shots / "studio-forward.png"))


def test_one_sgd_step_gives_the_weights_gn_sgd_gives(page, studio, shots):
    draw_and_wait(page, studio)
    page.click("nav button[data-view=backward]")
    sync_api.expect(page.locator("#loss")).to_contain_text("SoftmaxCrossEntropy")
    page.select_option("#target", "7")
    sync_api.expect(page.locator("#loss")).to_contain_text("against class 7")
    before = copy.deepcopy(studio.model)
    x = studio.last_input
    page.fill("#lr", "0.05")
    replies = capture(page, "**/api/step")
    page.click("#step")
    sync_api.expect(page.locator("#step-predicted")).to_have_count(1)
    shown = replies[-1]
    loss = gn.SoftmaxCrossEntropy()
    loss.forward(before.forward(x), np.array([7]))
    before.backward(loss.backward())
    gn.SGD(before, lr=0.05).step()
    for layer in shown["layers"]:
        for key, after in layer["after"].items():
            np.testing.assert_array_equal(decode(after), before.layers[layer["index"]].params[key])
            np.testing.assert_array_equal(studio.model.layers[layer["index"]].params[key], decode(after))
    sync_api.expect(page.locator("#step-predicted")).to_have_attribute(
        "data-index", str(int(np.argmax(before.predict(x)[0]))))
    page.screenshot(path=str(shots / "studio-backward.png"), full_page=True)


def test_training_run_streams_a_growing_curve_and_stops(page, studio, shots):
    page.click("nav button[data-view=train]")
    page.select_option("#train-dataset", "digits")
    page.fill("#train-epochs", "30")
    page.fill("#train-batch", "16")
    page.select_option("#train-optimizer", "adamw")
    page.select_option("#train-schedule", "onecycle")
    page.click("#train-start")
    chart = page.locator("#loss-chart")
    sync_api.expect(chart).not_to_have_attribute("data-points", "0", timeout=30_000)
    first = int(chart.get_attribute("data-points"))
    page.wait_for_function("n => Number(document.querySelector('#loss-chart').dataset.points) > n + 20", arg=first)
    sync_api.expect(page.locator("#train-filters canvas")).to_have_count(1)
    sync_api.expect(page.locator("#grad-norms .bar-row")).to_have_count(8)
    assert int(page.locator("#lr-chart").get_attribute("data-points")) > 20           # the rate, batch by batch
    rates = [e["lr"] for e in list(studio.job.events) if e["type"] == "batch"]
    assert studio.job.settings["schedule"] == "onecycle" and rates[-1] > rates[0]     # one-cycle's rise
    page.screenshot(path=str(shots / "studio-train.png"))
    page.click("#train-stop")
    sync_api.expect(page.locator("#train-state")).to_have_attribute("data-state", "stopped", timeout=30_000)
    stopped_at = len(studio.job.events)
    page.wait_for_timeout(500)
    assert len(studio.job.events) == stopped_at                          # the work has stopped
    assert studio.job.state == "stopped"


def test_worked_example_walks_to_the_seeds_mistake(page, shots):
    page.click("nav button[data-view=example]")
    sync_api.expect(page.locator("#example-position")).to_contain_text("step 1 of")
    total = int(page.locator("#example-position").inner_text().split()[-1])
    for _ in range(total - 1):
        page.click("#example-next")
    card = page.locator("#example-cards .card:not([hidden])")
    sync_api.expect(card).to_contain_text("What seed 000 got wrong")
    # each cell carries the full value in its title: the seed's wrong kernel entry, then the correct one
    sync_api.expect(card.locator('td[title^="1.286087"]')).to_have_count(1)
    sync_api.expect(card.locator('td[title^="1.047681"]')).to_have_count(1)
    page.screenshot(path=str(shots / "studio-example.png"))
