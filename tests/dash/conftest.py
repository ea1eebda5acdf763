"""Fixtures of the browser tests: one Chromium per module (`browser`), a fresh page per test
(`page`, failing the test on any console error or CSP violation)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.dash.browser import browser_fixture, new_page


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from browser_fixture()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    problems: list[str] = []
    page = new_page(browser, problems)
    try:
        yield page
    finally:
        page.context.close()
    # Errors the tests provoke on purpose are API answers shown in the alert, which the
    # browser also logs as failed resource loads; anything else is a defect of the page.
    unexpected = [p for p in problems if "Failed to load resource" not in p]
    assert not unexpected, unexpected
