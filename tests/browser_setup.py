"""Debian's Chromium driven by Playwright, shared by the studio and documentation browser tests.

Outside CI the browser tests skip when no Chromium is installed; in CI (CI=true) a missing
browser fails them, and .ci/run installs it first. Screenshots go to $GLASSNET_SCREENSHOTS,
else the test's temporary folder.
"""
import os
import shutil
from pathlib import Path

import pytest

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM_CANDIDATES = ["/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser"]


def chromium_path():
    for candidate in CHROMIUM_CANDIDATES + [shutil.which("chromium") or ""]:
        if candidate and Path(candidate).exists():
            return candidate
    if os.environ.get("CI"):
        pytest.fail("Chromium is not installed; .ci/run installs it with apt-get (no skipping in CI)")
    pytest.skip("no Chromium here: apt-get install chromium")


@pytest.fixture(scope="module")
def browser():
    executable = chromium_path()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable,
                                             args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield browser
        browser.close()


@pytest.fixture
def shots(tmp_path):
    folder = Path(os.environ.get("GLASSNET_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def watch_for_errors(page):
    """A list that collects every console error and uncaught error of ``page``."""
    problems = []
    page.on("console", lambda message: problems.append(f"console {message.type}: {message.text}")
            if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    return problems
