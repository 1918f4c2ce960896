"""A real browser for the console tests: Debian's chromium, driven by Playwright.

Playwright's own browser download is not used (it is not reachable from every machine): the
system chromium is (``apt-get install chromium``; .ci/run installs it). Without it the tests skip
saying how to enable them, unless ``FLEETOPS_REQUIRE_BROWSER=1`` (CI), where they fail.

Screenshots go to ``$FLEETOPS_ARTIFACTS/console`` (default ``.artifacts/console`` in the
checkout), one PNG per page a test looked at.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

BROWSER_HINT = "install Debian's chromium (sudo apt-get install -y chromium) to run the console tests"
ROOT = Path(__file__).resolve().parents[2]


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def require_browser() -> str:
    path = chromium_path()
    if path is None:
        if os.environ.get("FLEETOPS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"FLEETOPS_REQUIRE_BROWSER=1 but no chromium is installed. {BROWSER_HINT}")
        pytest.skip(f"no chromium is installed: {BROWSER_HINT}")
    return path


def artifacts_dir() -> Path:
    directory = Path(os.environ.get("FLEETOPS_ARTIFACTS") or ROOT / ".artifacts") / "console"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def screenshot(page: Any, name: str) -> Path:
    """Save the page as ``<artifacts>/console/NAME.png``."""
    path = artifacts_dir() / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def launch() -> Iterator[Any]:
    """A chromium (headless, no sandbox: the tests run as root) for a module's tests."""
    executable = require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()
