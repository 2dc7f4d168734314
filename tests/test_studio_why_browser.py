"""The studio's Why view in Chromium: every method's map over an uploaded digit, a pixel clicked and the
numbers behind it (which add up to the map's value), the mistakes panel; no console errors; screenshots."""
import pytest

import glassnet as gn
from glassnet.apps.studio.views import Studio
from browser_setup import browser, shots, sync_api, watch_for_errors  # noqa: F401 (fixtures)
from studio_setup import digits_model, drawn_digit_png, open_page

METHODS = ["integrated_gradients", "gradient", "input_x_gradient", "smoothgrad", "occlusion", "gradcam"]


@pytest.fixture(scope="module")
def trained():
    data = gn.datasets.digits()
    model = digits_model()
    model.fit(data.x_train, data.y_train, epochs=3, batch_size=32, optimizer="adam", lr=0.003, seed=0, verbose=False)
    return model


@pytest.fixture
def page(browser, trained, tmp_path):
    with open_page(browser, Studio(trained, save_dir=tmp_path)) as page:
        yield page


def test_the_why_view_shows_each_method_a_pixels_numbers_and_the_mistakes(page, shots, tmp_path):
    image = tmp_path / "zero.png"
    image.write_bytes(drawn_digit_png())
    page.set_input_files("#file", str(image))
    sync_api.expect(page.locator("#predicted")).not_to_be_empty()
    page.click("nav button[data-view=why]")
    overlay = page.locator("#why-overlay")
    for method in METHODS:
        page.select_option("#why-method", method)
        sync_api.expect(overlay).to_have_attribute("data-method", method)
        sync_api.expect(page.locator("#why-caption")).to_contain_text(f"{method} for class")
        box = overlay.bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.8)      # on the stroke
        sync_api.expect(page.locator("#why-pixel .formula")).to_be_visible()
        line = page.locator("#why-pixel p").nth(1).inner_text()
        value, total = line.split("value in the map ")[1].split(";")[0], line.split("add up to ")[1]
        assert float(value) == pytest.approx(float(total), rel=1e-6, abs=1e-9), (method, line)
        if method in ("integrated_gradients", "gradcam"):
            page.screenshot(path=str(shots / f"studio-why-{method}.png"))
    page.select_option("#why-target", "3")
    sync_api.expect(page.locator("#why-caption")).to_contain_text("for class 3")
    page.click("#why-mistakes")
    sync_api.expect(page.locator("#why-mistakes-panel figure").first).to_be_visible()
    assert page.locator("#why-mistakes-panel figure").count() >= 1
    assert "said" in page.locator("#why-mistakes-panel figcaption").first.inner_text()
    page.screenshot(path=str(shots / "studio-why-mistakes.png"), full_page=True)
