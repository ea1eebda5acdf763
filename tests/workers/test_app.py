"""`WorkerApp` under another ASGI server (uvicorn in a thread, real HTTP on loopback): the ASGI
lifespan opens the store and creates the bindings' namespaces, shutdown drains `wait_until` work
and closes the store; without lifespan the first request starts it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import httpx
import pytest
import uvicorn

import edgekv
from edgekv.workers import WorkerApp, load_config
from tests.servers import free_port, wait_for
from tests.workers.projects import NS_ID, ON_FETCH_WORKER, write_project


@contextmanager
def served(app: WorkerApp, lifespan: Literal["on", "off"]) -> Iterator[httpx.Client]:
    port = free_port()
    config = uvicorn.Config(app, port=port, lifespan=lifespan, log_config=None, access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started or not thread.is_alive(), 10, 0.02, "uvicorn did not start")
    assert server.started, "uvicorn did not start"
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture(autouse=True)
def sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "worker", raising=False)


@pytest.mark.parametrize("lifespan", ["on", "off"])
def test_lifespan_or_first_request_prepares_and_shutdown_drains(
    tmp_path: Path, lifespan: Literal["on", "off"]
) -> None:
    config = load_config(write_project(tmp_path, ON_FETCH_WORKER))
    client = edgekv.open()  # in memory: what the worker wrote is checked through `client`
    app = WorkerApp(config, client, drain_timeout=5)
    with served(app, lifespan) as http:
        assert http.get("/healthz").text == "ok\n"
        assert http.put("/kv/a", content="1").status_code == 201
        assert http.get("/kv/a").text == "1"
        assert http.get("/later/bg").status_code == 202  # its work is still pending...
    if lifespan == "on":  # ...and lifespan shutdown waited for it, then closed the store
        assert app.client._store is None
        assert len(app._tasks) == 0
    # With lifespan off, the PUT above found its namespace: the first request started the app.


def test_the_namespace_is_created_at_startup(tmp_path: Path) -> None:
    async def main() -> str | None:
        config = load_config(write_project(tmp_path, ON_FETCH_WORKER))
        app = WorkerApp(config, edgekv.open())
        await app.startup()
        found = await app.client.get_namespace(NS_ID)
        await app.shutdown()
        return None if found is None else found.title

    assert asyncio.run(main()) == "test-worker-KV"


def test_one_access_line_per_request_through_the_shared_access_log(tmp_path: Path) -> None:
    import io

    from edgekv.asgi.accesslog import AccessLog

    stream = io.StringIO()
    config = load_config(write_project(tmp_path, ON_FETCH_WORKER))
    app = WorkerApp(config, edgekv.open(), access_log=AccessLog(stream))
    with served(app, "on") as http:
        assert http.put("/kv/a?x=1", content="1").status_code == 201
        assert http.get("/kv/a").text == "1"
        assert http.get("/kv/missing").status_code == 404
    # lifespan shutdown flushed the buffered lines
    lines = stream.getvalue().splitlines()
    assert [line.split("edgekv.access: ", 1)[1].rsplit(" ", 2)[0] for line in lines] == [
        '127.0.0.1 "PUT /kv/a" 201',  # the path without its query, as the REST server's lines
        '127.0.0.1 "GET /kv/a" 200',
        '127.0.0.1 "GET /kv/missing" 404',
    ]
    assert lines[1].endswith(" 1B")


def test_the_runtime_answers_its_own_paths_and_every_other_reaches_the_worker(
    tmp_path: Path,
) -> None:
    # The runtime's paths are kept off a worker request's way by one test (a set and a
    # prefix): each still answers, and near misses (other methods, lookalike paths, other
    # paths under the prefix) are the worker's.
    config = load_config(write_project(tmp_path, ON_FETCH_WORKER))
    app = WorkerApp(config, edgekv.open(), local=True)
    with served(app, "on") as http:
        assert http.get("/healthz").text == "ok\n"
        assert http.head("/healthz").status_code == 200
        assert http.get("/readyz").text == "ready\n"
        assert http.get("/__edgekv/stats").headers["content-type"] == "application/json"
        for path in ("/healthzx", "/healthz/", "/readyz2", "/__edgekv/nothing", "/__edgekvx"):
            answer = http.get(path)
            assert (answer.status_code, answer.text) == (404, "no route"), path
        assert http.post("/healthz").text == "no route"  # only GET and HEAD are the runtime's
        assert http.get("/metrics").text == "no route"  # `edgekv dev` has no /metrics
