"""The studio page on a graph model (resnet_mini for digits) in Chromium: the graph drawn by depth with
its edges, an Add node's addends, the backward view's summed gradient at a fan-out and its parts.
Screenshots: studio-graph.png, studio-add-unit.png, studio-fan-out.png."""
import numpy as np
import pytest

from glassnet.apps.studio.views import Studio
from browser_setup import browser, shots, sync_api, watch_for_errors  # noqa: F401 (fixtures)
from studio_setup import drawn_digit_png, resnet_digits_model, served


@pytest.fixture
def studio(tmp_path):
    return Studio(resnet_digits_model(), save_dir=tmp_path)


@pytest.fixture
def page(browser, studio, tmp_path):
    with served(studio) as server:
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        problems = watch_for_errors(page)
        page.goto(server.url)
        sync_api.expect(page.locator("#model-line")).to_contain_text(f"{studio.model.num_params():,} parameters")
        path = tmp_path / "zero.png"
        path.write_bytes(drawn_digit_png())
        with page.expect_response("**/api/trace"):
            page.set_input_files("#file", str(path))
        nodes = len(studio.model.graph.nodes)
        sync_api.expect(page.locator("#forward-layers .graph .column")).to_have_count(nodes + 1)   # + the input
        yield page
        page.close()
    assert problems == [], problems


def edge_count(model):
    return sum(len(sources) for _, sources in model.graph.nodes)


def test_the_graph_is_drawn_by_depth_with_every_edge(page, studio, shots):
    model = studio.model
    depths = page.locator("#forward-layers .graph .depth")
    longest = max(int(d) for d in depths.evaluate_all("els => els.map(e => e.dataset.depth)"))
    paths = page.locator("#forward-layers svg.edges path")
    sync_api.expect(paths).to_have_count(edge_count(model))
    depths_by_hand = []
    for _, sources in model.graph.nodes:                                # the longest path from the input
        depths_by_hand.append(1 + max(depths_by_hand[s - 1] if s > 0 else -1 for s in sources))
    assert longest == max(depths_by_hand) and longest < len(model.graph.nodes) - 1    # branches share columns
    adds = page.locator("#forward-layers .column.merge")
    sync_api.expect(adds).to_have_count(3)
    # an Add sits right of both of its inputs, and an edge ends at its left side
    add_box = adds.first.bounding_box()
    first_add = next(k for k, (index, _) in enumerate(model.graph.nodes) if type(model.layers[index]).__name__ == "Add")
    for source in (s - 1 for s in model.graph.nodes[first_add][1]):
        source_box = page.locator(f"#forward-layers [data-node='{source}']").bounding_box()
        assert source_box["x"] + source_box["width"] <= add_box["x"]
    page.screenshot(path=str(shots / "studio-graph.png"), full_page=True)


def test_clicking_an_add_unit_shows_its_addends(page, studio, shots):
    add = page.locator("#forward-layers .column.merge").first
    tile = add.locator("canvas").nth(2)                                 # channel 2
    box = tile.bounding_box()
    tile.click(position={"x": box["width"] * (3.5 / 8), "y": box["height"] * (1.5 / 8)})   # row 1, col 3
    sync_api.expect(page.locator("#unit-detail h3")).to_contain_text("unit [2, 1, 3]")
    rows = page.locator("#unit-detail table.addends tr")
    sync_api.expect(rows).to_have_count(2)
    total = float(page.locator("#unit-sum").get_attribute("data-value"))
    value = float(page.locator("#unit-value").get_attribute("data-value"))
    assert total == value
    addends = [float(v) for v in rows.locator("td:nth-child(2)").evaluate_all("els => els.map(e => e.title)")]
    assert addends[0] + addends[1] == value
    page.screenshot(path=str(shots / "studio-add-unit.png"), full_page=True)


def test_the_backward_view_shows_the_parts_summed_at_a_fan_out(page, studio, shots):
    page.click("nav button[data-view=backward]")
    sync_api.expect(page.locator("#loss")).to_contain_text("SoftmaxCrossEntropy")
    fan_outs = page.locator("#backward-layers .column.fan-out")
    sync_api.expect(fan_outs.first).to_be_visible()
    model = studio.model
    expected = sum(1 for k in range(len(model.graph.nodes))
                   if sum(sources.count(k + 1) for _, sources in model.graph.nodes) > 1)
    sync_api.expect(fan_outs).to_have_count(expected)
    sync_api.expect(fan_outs.first.locator(".caption").first).to_contain_text("the sum of 2 parts")
    sync_api.expect(fan_outs.first.locator(".parts")).to_have_count(2)
    fan_outs.first.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "studio-fan-out.png"), full_page=True)
    assert np.isfinite(float(page.locator("#loss").get_attribute("data-value")))
