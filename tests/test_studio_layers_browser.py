"""The studio page in Chromium on the layers of real architectures: mobilenet_mini for digits (a depthwise
unit names the one input channel it reads) and a model with LRN (its unit shows the window of channels).
Screenshots: studio-depthwise-unit.png, studio-lrn-unit.png."""
import pytest

from glassnet.apps.studio.views import Studio
from glassnet.models import presets
import glassnet as gn
from browser_setup import browser, shots, sync_api, watch_for_errors  # noqa: F401 (fixtures)
from studio_setup import drawn_digit_png, served
from test_studio_new_layers import layers_digits_model


def mobilenet_digits_model():
    settings = dict(presets.DEFAULTS["digits"], arch="mobilenet_mini", dataset="digits", data_dir=None,
                    dtype="float64", seed=0, checkpoint_every=None)
    return presets.build_for_dataset(gn.datasets.digits(), settings)


def opened(browser, studio, server, tmp_path):
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    problems = watch_for_errors(page)
    page.goto(server.url)
    sync_api.expect(page.locator("#model-line")).to_contain_text(f"{studio.model.num_params():,} parameters")
    path = tmp_path / "zero.png"
    path.write_bytes(drawn_digit_png())
    with page.expect_response("**/api/trace"):
        page.set_input_files("#file", str(path))
    last = len(studio.model.graph.nodes) - 1        # a graph is drawn in columns, a chain in rows: both name nodes
    sync_api.expect(page.locator(f"#forward-layers [data-node='{last}']")).to_have_count(1)
    return page, problems


def click_unit(page, node, channel, row, col, size):
    tile = page.locator(f"#forward-layers [data-node='{node}'] canvas").nth(channel)
    box = tile.bounding_box()
    tile.click(position={"x": box["width"] * ((col + 0.5) / size), "y": box["height"] * ((row + 0.5) / size)})
    sync_api.expect(page.locator("#unit-detail h3")).to_contain_text(f"unit [{channel}, {row}, {col}]")


@pytest.mark.parametrize("which", ["depthwise", "lrn"])
def test_a_depthwise_and_an_lrn_unit_in_the_page(browser, tmp_path, shots, which):
    model = mobilenet_digits_model() if which == "depthwise" else layers_digits_model()
    studio = Studio(model, save_dir=tmp_path)
    with served(studio) as server:
        page, problems = opened(browser, studio, server, tmp_path)
        if which == "depthwise":
            node = next(k for k, (index, _) in enumerate(model.graph.nodes)
                        if getattr(model.layers[index], "groups", 1) > 1)
            click_unit(page, node, 2, 1, 3, 8)
            sync_api.expect(page.locator("#unit-detail p.note")).to_contain_text("reads input channel 2 only")
            sync_api.expect(page.locator("#unit-detail .channel-tables").first).to_contain_text("receptive field")
        else:
            node = next(k for k, (index, _) in enumerate(model.graph.nodes)
                        if isinstance(model.layers[index], gn.LRN))
            click_unit(page, node, 3, 2, 2, 8)
            sync_api.expect(page.locator("#unit-detail p.note")).to_contain_text("channels 1-5")
            sync_api.expect(page.locator("#unit-detail table.lrn-window tr")).to_have_count(3)
        total = float(page.locator("#unit-sum").get_attribute("data-value"))
        value = float(page.locator("#unit-value").get_attribute("data-value"))
        assert total == pytest.approx(value, rel=1e-9)
        page.locator("#unit-detail").scroll_into_view_if_needed()
        page.screenshot(path=str(shots / f"studio-{which}-unit.png"), full_page=True)
        page.close()
    assert problems == [], problems
