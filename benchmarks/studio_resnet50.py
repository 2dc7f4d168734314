"""The studio on a real-size model: ResNet-50 (random weights) at 224x224, in Chromium.

    python benchmarks/studio_resnet50.py [--out studio-resnet50]

Builds ResNet-50 in PyTorch (He et al. 2015: bottleneck blocks [3, 4, 6, 3], torchvision's layout;
random weights, float32), exports it with torch.onnx.export and imports it with gn.import_onnx; serves
it with the studio on 127.0.0.1 and, in Debian's Chromium (Playwright), uploads a 224x224 photo-like
image and measures:

- time from the upload to the first forward view (every node's column placed, the columns in view
  filled with their first channels),
- bytes the page received for it (/api/predict, /api/trace and the /api/maps pages it asked for),
- the server process's peak resident memory over that time (VmHWM, reset before the upload),
- then clicks a unit of a 2,048-channel node and reads the exact numbers the server lays out.

Screenshots go to OUT: studio-resnet50-forward.png, studio-resnet50-unit.png. Needs torch, onnx,
Playwright and Chromium (the test extra and `apt-get install chromium`).
"""
import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))


def resnet50_onnx(path):
    import torch
    nn = torch.nn

    class Bottleneck(nn.Module):
        def __init__(self, c_in, width, stride):
            super().__init__()
            c_out = 4 * width
            self.conv1, self.bn1 = nn.Conv2d(c_in, width, 1, bias=False), nn.BatchNorm2d(width)
            self.conv2, self.bn2 = nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width)
            self.conv3, self.bn3 = nn.Conv2d(width, c_out, 1, bias=False), nn.BatchNorm2d(c_out)
            self.down = None
            if stride != 1 or c_in != c_out:
                self.down = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

        def forward(self, x):
            h = torch.relu(self.bn1(self.conv1(x)))
            h = torch.relu(self.bn2(self.conv2(h)))
            h = self.bn3(self.conv3(h))
            return torch.relu(h + (x if self.down is None else self.down(x)))

    class ResNet50(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                      nn.MaxPool2d(3, 2, 1))
            blocks, c_in = [], 64
            for width, count, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
                for k in range(count):
                    blocks.append(Bottleneck(c_in, width, stride if k == 0 else 1))
                    c_in = 4 * width
            self.blocks = nn.Sequential(*blocks)
            self.fc = nn.Linear(2048, 1000)

        def forward(self, x):
            return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1), 1))

    torch.manual_seed(0)
    net = ResNet50().eval()
    torch.onnx.export(net, (torch.randn(1, 3, 224, 224),), str(path), dynamo=False, opset_version=17)
    return sum(p.numel() for p in net.parameters())


def photo_png():
    """A 224x224 colour picture with some structure (bands and a disc), as PNG bytes."""
    from PIL import Image, ImageDraw
    rng = np.random.default_rng(0)
    pixels = np.zeros((224, 224, 3), np.uint8)
    pixels[..., 0] = np.linspace(30, 220, 224)[None, :]
    pixels[..., 1] = np.linspace(200, 40, 224)[:, None]
    pixels[..., 2] = rng.integers(60, 120, (224, 224))
    image = Image.fromarray(pixels)
    ImageDraw.Draw(image).ellipse((60, 50, 170, 160), fill=(240, 230, 40))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def peak_rss_reset():
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def current_rss_bytes():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return None


def peak_rss_bytes():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="studio-resnet50")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import glassnet as gn
    from glassnet.data.preprocessing import resize_record
    from glassnet.apps.studio.views import Studio
    from browser_setup import chromium_path
    from playwright.sync_api import expect, sync_playwright
    from studio_setup import served

    report = {}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "resnet50.onnx"
        started = time.perf_counter()
        report["parameters"] = resnet50_onnx(path)
        report["onnx_bytes"] = path.stat().st_size
        model = gn.import_onnx(path)
        report["import_seconds"] = time.perf_counter() - started
    model.metadata["preprocessing"] = resize_record((224, 224), 3, mean=[0.485, 0.456, 0.406],
                                                    std=[0.229, 0.224, 0.225])
    report["nodes"] = len(model.graph.nodes)
    report["conv_layers"] = sum(isinstance(layer, gn.Conv2D) for layer in model.layers)
    studio = Studio(model, save_dir=out)
    picture = out / "picture.png"
    picture.write_bytes(photo_png())
    received = []
    with served(studio) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox",
                                                                                   "--disable-dev-shm-usage"])
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        errors = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(server.url)
        expect(page.locator("#model-line")).to_contain_text("parameters", timeout=60_000)
        def relay(route):                       # every API reply's size, read in passing
            response = route.fetch()
            received.append((route.request.url, len(response.body())))
            route.fulfill(response=response)
        page.route("**/api/**", relay)
        peak_rss_reset()
        report["server_rss_before_bytes"] = current_rss_bytes()
        started = time.perf_counter()
        page.set_input_files("#file", str(picture))
        expect(page.locator("#forward-layers .graph .column")).to_have_count(report["nodes"] + 1, timeout=300_000)
        page.locator("#forward-layers").scroll_into_view_if_needed()      # pages load for the columns in view
        expect(page.locator("#forward-layers .paged canvas").first).to_be_visible(timeout=120_000)
        page.wait_for_load_state("networkidle")
        report["seconds_to_first_forward_view"] = time.perf_counter() - started
        report["server_peak_rss_bytes"] = peak_rss_bytes()
        report["bytes_received"] = sum(size for _, size in received)
        report["bytes_by_route"] = {}
        for url, size in received:
            route = url.split("/api/")[1]
            report["bytes_by_route"][route] = report["bytes_by_route"].get(route, 0) + size
        page.screenshot(path=str(out / "studio-resnet50-forward.png"))
        # a unit of a 2,048-channel node: the last block's last convolution (1x1, 512 -> 2048)
        shapes = page.locator("#forward-layers .column .shape").all_inner_texts()
        titles = page.locator("#forward-layers .column h3").all_inner_texts()
        wide = [i for i, (text, title) in enumerate(zip(shapes, titles))
                if text.startswith("(2048,") and title.endswith("Conv2D")]
        column = page.locator("#forward-layers .column").nth(wide[-1])
        column.scroll_into_view_if_needed()
        tile = column.locator(".paged canvas").nth(3)
        expect(tile).to_be_visible(timeout=120_000)
        clicked = time.perf_counter()
        tile.click()
        expect(page.locator("#unit-detail h3")).to_contain_text("unit [3,", timeout=120_000)
        total = float(page.locator("#unit-sum").get_attribute("data-value"))          # the terms, summed in float64
        value = float(page.locator("#unit-value").get_attribute("data-value"))        # the engine's float32 value
        report["unit_sum_minus_value_relative"] = abs(total - value) / max(abs(value), 1e-30)
        report["seconds_to_unit_detail"] = time.perf_counter() - clicked
        report["unit_heading"] = page.locator("#unit-detail h3").inner_text()
        report["unit_formula"] = page.locator("#unit-detail .formula").inner_text()
        page.locator("#unit-detail").scroll_into_view_if_needed()
        page.screenshot(path=str(out / "studio-resnet50-unit.png"))
        report["console_errors"] = errors
        browser.close()
    (out / "studio-resnet50.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0 if not report["console_errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
