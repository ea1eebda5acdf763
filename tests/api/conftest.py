"""Fixtures of the REST API suite.

`api`: the app over the `store` fixture's engine (memory / sqlite / postgres), served in-process
by the real ASGI server on a free loopback port, with an httpx client holding an admin token;
`ns`: a fresh namespace of it (the id); `codes(r)` / `message(r)`: what an error envelope says.
`central`: `python -m edgekv serve` as a real subprocess over a fresh SQLite directory (SDK,
wrangler, signals, kill -9).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from edgekv._types import Store
from edgekv.api import EdgeKVApp, create_app
from edgekv.api.auth import create_token
from edgekv.asgi.server import serve_asgi
from tests.conftest import FakeClock
from tests.servers import NS_PATH, CentralProcess, free_port


def codes(r: httpx.Response) -> list[int]:
    """The codes of an error envelope's `errors`."""
    return [e["code"] for e in r.json()["errors"]]


def message(r: httpx.Response) -> str:
    """The message of an error envelope's first error."""
    return str(r.json()["errors"][0]["message"])


@dataclass
class Api:
    """A running server and a client of its namespaces collection (`http` has the token)."""

    url: str
    account: str
    token: str
    store: Store
    app: EdgeKVApp
    http: httpx.AsyncClient
    clock: FakeClock

    @property
    def namespaces(self) -> str:
        return self.url + NS_PATH.format(account=self.account)

    async def create_namespace(self, title: str = "test") -> str:
        r = await self.http.post(self.namespaces, json={"title": title})
        assert r.status_code == 200, r.text
        return str(r.json()["result"]["id"])

    def client(self, token: str | None = None, **headers: str) -> httpx.AsyncClient:
        """Another client of the same server with another token (or none)."""
        all_headers = dict(headers)
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        return httpx.AsyncClient(headers=all_headers, timeout=30)


@contextlib.asynccontextmanager
async def serving(app: EdgeKVApp, server: str = "granian") -> AsyncIterator[str]:
    """Serve `app` in this event loop on a free port; yields its base URL."""
    port = free_port()
    ready, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        serve_asgi(app, "127.0.0.1", port, server=server, ready=ready.set, stop=stop)  # type: ignore[arg-type]
    )
    try:
        await asyncio.wait_for(ready.wait(), 10)
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(timeout=5) as probe:
            for _ in range(200):
                with contextlib.suppress(httpx.TransportError):
                    if (await probe.get(url + "/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.02)
        yield url
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


@pytest.fixture
async def api(store: Store, clock: FakeClock) -> AsyncIterator[Api]:
    app = create_app(store, clock=clock)
    await app.startup()
    account = app.client.account_id
    assert account is not None
    token, _ = await create_token(store, account, name="test admin")
    async with (
        serving(app) as url,
        httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
    ):
        yield Api(url, account, token, store, app, http, clock)
    await app.shutdown()


@pytest.fixture
async def ns(api: Api) -> str:
    """A fresh namespace of `api` (its id)."""
    return await api.create_namespace()


# -- the real subprocess ------------------------------------------------------------------------
class Central(CentralProcess):
    """`python -m edgekv serve` running in a subprocess, over the directory `data` (or a
    database; `data` then only names the log file)."""

    def __init__(self, data: Path, options: list[str], **kw: Any) -> None:
        self.data = data
        super().__init__(options, **kw)


def start_central(
    data: Path,
    *,
    account: str | None = None,
    token: str | None = None,
    port: int | None = None,
    extra_env: dict[str, Any] | None = None,
    args: tuple[str, ...] = (),
    env_credentials: bool = True,
    database: str | None = None,
) -> Central:
    """Start the server and wait until `/healthz` answers (at most 20 s). With
    `env_credentials`, the account and token come from EDGEKV_ACCOUNT_ID / EDGEKV_API_TOKEN;
    without, the server bootstraps its own (read them from DIR/credentials.json). `database`
    (a postgresql:// URL) replaces `--data data` (which then only names the log file)."""
    port = port or free_port()
    store = ["--database", database] if database else ["--data", str(data)]
    central = Central(
        data,
        [*store, *args],
        account=account,
        token=token,
        credentials=env_credentials,
        env={k: str(v) for k, v in (extra_env or {}).items()},
        log_path=data.parent / f"{data.name}-server-{port}.log",
        port=port,
    )
    return central.start(timeout=20)


@pytest.fixture
def central(tmp_path: Path) -> Iterator[Central]:
    with start_central(tmp_path / "data") as server:
        yield server


@pytest.fixture(scope="module")
def shared_central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Central]:
    """One server for a whole module of client tests (each test makes its own namespaces)."""
    with start_central(tmp_path_factory.mktemp("central") / "data") as server:
        yield server
