"""The documentation site: built offline in strict mode, every CLI command documented, and the
rendered pages looked at in real Chromium (a tutorial page; the HTML trace in a notebook page).

Strict mode turns every MkDocs warning into a failure: a broken link, a reference to a name
that does not exist, a docstring griffe cannot read.
"""
import contextlib
import functools
import http.server
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from browser_setup import browser, shots, sync_api, watch_for_errors  # noqa: F401 (fixtures)
from glassnet.apps.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def build_site(config, site_dir):
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config),
                           "--site-dir", str(site_dir)], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, timeout=600)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site_dir = tmp_path_factory.mktemp("site")
    result = build_site(ROOT / "mkdocs.yml", site_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    return site_dir


def test_the_site_builds_in_strict_mode_with_reference_and_tutorials(site):
    layers = (site / "reference" / "layers" / "index.html").read_text()
    assert "Conv2D" in layers and "kernel_size" in layers and "2-D convolution over a batch of images" in layers
    assert "(2, 8, 28, 28)" in layers                        # the docstring example, rendered
    tutorial = (site / "tutorials" / "01_seed000_by_hand" / "index.html").read_text()
    assert "glassnet-trace" in tutorial and "all checks passed" in tutorial   # the saved outputs, rendered
    assert (site / "images" / "studio-forward.png").is_file()


def strict_config_with_extra_page(tmp_path, page_text):
    """A copy of mkdocs.yml with one more page, ``page_text``, in a copy of the docs folder."""
    docs = tmp_path / "docs"
    subprocess.run(["cp", "-r", str(ROOT / "docs"), str(docs)], check=True)
    (docs / "extra.md").write_text(page_text)
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    config["docs_dir"] = str(docs)
    config["nav"].append({"Extra": "extra.md"})
    config["plugins"][2]["mkdocstrings"]["handlers"]["python"]["paths"] = [str(ROOT / "src")]
    path = tmp_path / "mkdocs.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize("page_text, complaint", [
    ("# Extra\n\nSee [the layers](reference/no-such-page.md).\n", "no-such-page.md"),
    ("# Extra\n\n::: glassnet.NoSuchLayer\n", "NoSuchLayer"),
])
def test_a_broken_link_or_reference_fails_the_build(tmp_path, page_text, complaint):
    result = build_site(strict_config_with_extra_page(tmp_path, page_text), tmp_path / "site")
    assert result.returncode != 0
    assert complaint in result.stdout + result.stderr


def test_every_command_line_command_is_on_the_cli_page():
    parser = build_parser()
    commands = next(action for action in parser._actions if action.__class__.__name__ == "_SubParsersAction")
    page = (ROOT / "docs" / "cli.md").read_text()
    missing = [name for name in commands.choices if f"glassnet {name}" not in page]
    assert len(commands.choices) >= 10
    assert missing == [], f"commands missing from docs/cli.md: {missing}"


@contextlib.contextmanager
def served_folder(folder):
    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_tutorial_page_and_the_notebook_trace_in_chromium(site, browser, shots):
    with served_folder(site) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        problems = watch_for_errors(page)
        page.goto(f"{url}/tutorials/03_mnist_look_inside/")
        sync_api.expect(page.locator("h1").first).to_contain_text("Train a digit classifier")
        sync_api.expect(page.get_by_text("test accuracy 0.9", exact=False).first).to_be_visible()
        images = page.locator(".jp-RenderedImage img, .output_png img, img[src^='data:image/png']")
        assert images.count() >= 4                            # filters, feature maps, confusion, mistakes
        page.locator("h2", has_text="The filters").first.scroll_into_view_if_needed()
        page.screenshot(path=str(shots / "tutorial-page.png"))

        page.set_viewport_size({"width": 1280, "height": 1500})
        page.goto(f"{url}/tutorials/01_seed000_by_hand/")
        trace = page.locator(".glassnet-trace").first
        conv = trace.locator("summary", has_text="layer 0: Conv2D")
        conv.click()
        sync_api.expect(trace.locator("details").first).to_have_attribute("open", "")
        sync_api.expect(trace.locator("details").first).to_contain_text("dL/d(weight)")
        trace.evaluate("element => { element.scrollIntoView(); window.scrollBy(0, -90); }")   # clear of the header
        page.wait_for_timeout(300)
        page.screenshot(path=str(shots / "notebook-trace.png"))
        page.close()
    assert problems == [], problems


def test_the_readme_test_command_is_the_one_ci_runs_and_says_how_long_it_takes():
    """The README's second command is what .ci/run runs, prints per-file progress (no -q: one line per
    test file with its percentage), and the README says how long it takes on a named machine."""
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    commands = re.findall(r"```bash\n(.*?)\n```", readme.split("## Using it from Python")[0], re.S)
    assert len(commands) == 2, commands                      # exactly two set-up commands
    test_command = commands[1].split("&&")[-1].strip()
    assert test_command == "python -m pytest"
    assert re.search(rf"^timeout \d+ {re.escape(test_command)}(\s|$)", (root / ".ci" / "run").read_text(), re.M)
    took = r"On a 2-core machine \([A-Za-z ]+, measured this session\) the tests take [\d.]+(-[\d.]+)? minutes"
    assert re.search(took, readme.replace("\n", " "))
