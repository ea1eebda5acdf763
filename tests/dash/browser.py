"""Driving Debian's Chromium with Playwright for Python in the dashboard tests.

Playwright cannot download its own browsers on these machines: it is pointed at the system
browser (`executable_path`, /usr/bin/chromium from the apt package `chromium`, installed by
scripts/install-browser). One browser per test module (`browser` fixture); each test gets a
fresh context (its own sessionStorage). Console errors and CSP violations fail the test: a
page that breaks its own policy is a bug. `screenshot(page, name)` writes the screenshots of
docs/dashboard.md: into docs/images/ when EDGEKV_SCREENSHOTS=docs (scripts/gen-screenshots),
else into a temporary directory, so that a test run leaves the work tree as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
IMAGES = ROOT / "docs" / "images"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

__all__ = ["ARGS", "CHROMIUM", "browser_fixture", "new_page", "screenshot"]


def available() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not Path(CHROMIUM).exists():
        return "chromium is not installed (scripts/install-browser)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (scripts/install)"
    return None


def browser_fixture() -> Iterator[Any]:
    reason = available()
    if reason is not None:
        pytest.fail(reason)  # installed by scripts/install and .ci/run: missing is a defect
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser: Any, problems: list[str]) -> Any:
    """A page in a fresh context; console errors and page errors are appended to `problems`."""
    context = browser.new_context(viewport={"width": 1200, "height": 800}, accept_downloads=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return page


def screenshot(page: Any, name: str) -> Path:
    directory = IMAGES
    if os.environ.get("EDGEKV_SCREENSHOTS") != "docs":
        directory = Path(tempfile.gettempdir()) / "edgekv-screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path
