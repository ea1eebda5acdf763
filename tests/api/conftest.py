"""Fixtures of the REST API suite.

`api`: the app over the `store` fixture's engine (memory / sqlite / postgres), served in-process
by the real ASGI server on a free loopback port, with an httpx client holding an admin token.
`central`: `python -m edgekv serve` as a real subprocess over a fresh SQLite directory (SDK,
wrangler, signals, kill -9).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from edgekv._types import Store
from edgekv.api import EdgeKVApp, create_app
from edgekv.api.auth import create_token
from edgekv.api.server import serve_asgi
from tests.conftest import FakeClock

ROOT = Path(__file__).resolve().parents[2]
NS_PATH = "/client/v4/accounts/{account}/storage/kv/namespaces"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


# -- the real subprocess ------------------------------------------------------------------------
@dataclass
class Central:
    """`python -m edgekv serve` running in a subprocess."""

    url: str
    account: str
    token: str
    data: Path
    proc: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def api(self) -> str:
        return self.url + "/client/v4"

    @property
    def namespaces(self) -> str:
        return self.url + NS_PATH.format(account=self.account)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, text: str, timeout: float = 5) -> str:
        """The log once it holds `text` (access lines are written in batches)."""
        deadline = time.monotonic() + timeout
        while text not in (log := self.log()):
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not in the server log:\n{log}")
            time.sleep(0.05)
        return log

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


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
    account = account or secrets.token_hex(16)
    token = token or secrets.token_urlsafe(30)
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEKV_")}
    env["PYTHONUNBUFFERED"] = "1"
    if env_credentials:
        env.update(EDGEKV_ACCOUNT_ID=account, EDGEKV_API_TOKEN=token)
    env.update({k: str(v) for k, v in (extra_env or {}).items()})
    log_path = data.parent / f"{data.name}-server-{port}.log"
    store = ["--database", database] if database else ["--data", str(data)]
    cmd = [sys.executable, "-m", "edgekv", "serve", *store, "--port", str(port)]
    with log_path.open("ab") as log:
        proc = subprocess.Popen([*cmd, *args], env=env, stdout=log, stderr=log, cwd=ROOT)
    central = Central(f"http://127.0.0.1:{port}", account, token, data, proc, log_path, env)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"edgekv serve exited with {proc.returncode}:\n{central.log()}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(central.url + "/healthz", timeout=1).status_code == 200:
                return central
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"edgekv serve did not start:\n{central.log()}")


@pytest.fixture
def central(tmp_path: Path) -> Iterator[Central]:
    server = start_central(tmp_path / "data")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def shared_central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Central]:
    """One server for a whole module of client tests (each test makes its own namespaces)."""
    server = start_central(tmp_path_factory.mktemp("central") / "data")
    try:
        yield server
    finally:
        server.stop()
