"""The dashboard of `edgekv dev` at /__edgekv/dash in a real Chromium: no token, the worker's
binding namespace listed, data written in the page read by the worker and the other way
round; the console's API refuses requests that do not come from its page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.dash.browser import screenshot
from tests.workers.processes import Server
from tests.workers.projects import NS_ID, ON_FETCH_WORKER, write_project


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("dev")
    config = write_project(root, ON_FETCH_WORKER)
    server = Server(
        ["dev", "--config", str(config), "--persist-to", str(root / ".edgekv")],
        cwd=root,
        log_path=root / "dev.log",
    )
    with server:
        yield server


def test_dev_page_needs_no_token_and_shares_the_worker_store(page: Any, dev: Server) -> None:
    written = httpx.put(f"{dev.url}/kv/from-worker", content=b"written by the worker")
    assert written.status_code == 201
    page.goto(dev.url + "/__edgekv/dash")
    expect(page.get_by_role("heading", name="Namespaces")).to_be_visible()
    expect(page.get_by_label("API token")).to_have_count(0)  # no sign-in
    expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
    row = page.get_by_role("row").filter(has_text=NS_ID)
    expect(row).to_contain_text("1")  # key count of the binding's namespace
    screenshot(page, "dev")
    row.get_by_role("link").click()
    page.get_by_role("link", name="from-worker").click()
    expect(page.get_by_label("Value")).to_have_text("written by the worker")

    page.go_back()
    page.get_by_role("button", name="Add key").click()
    page.get_by_label("Key", exact=True).fill("from-page")
    page.get_by_label("Value").fill("written in the dashboard")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("link", name="from-page")).to_be_visible()
    assert httpx.get(f"{dev.url}/kv/from-page").text == "written in the dashboard"


def test_dev_console_security(dev: Server) -> None:
    page = httpx.get(dev.url + "/__edgekv/dash", timeout=10)
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert 'data-api="/__edgekv/client/v4"' in page.text
    api = f"{dev.url}/__edgekv/client/v4/accounts"
    # without the page's header (what another origin's page could send): refused
    assert httpx.get(api, timeout=10).status_code == 401
    answer = httpx.get(api, headers={"X-EdgeKV-Dashboard": "1"}, timeout=10)
    assert answer.status_code == 200 and len(answer.json()["result"]) == 1
    # the worker still owns every other path, /metrics included
    assert httpx.get(f"{dev.url}/kv/nothing", timeout=10).status_code == 404
    metrics = httpx.get(dev.url + "/__edgekv/metrics", headers={"X-EdgeKV-Dashboard": "1"})
    assert 'edgekv_requests_total{op="list_accounts",status="200"}' in metrics.text


def test_dev_log_has_no_token(dev: Server) -> None:
    assert "Authorization" not in dev.log() and "Bearer" not in dev.log()
