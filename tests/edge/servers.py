"""Real central servers on loopback for the location tests.

- `InProcessCentral(store, clock)`: the REST app over a given store, served by uvicorn in a
  thread of the test process (its own event loop) on a free port. Tests can wrap the store in a
  `CountingStore` to count what reaches the centre, and give the server a FakeClock.
- `SessionCentral`: one `InProcessCentral` over a `MemoryStore` for a whole session; every test
  gets a fresh account and token (`new_account()`), and its clock follows the test's FakeClock.
- `SubprocessCentral(data_dir)`: `python -m edgekv serve` over SQLite in a child process, with
  EDGEKV_ACCOUNT_ID / EDGEKV_API_TOKEN; `kill()` (SIGKILL by PID) and `start()` again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx
import uvicorn

from edgekv._types import Store
from edgekv.api import EdgeKVApp, create_app
from edgekv.api.auth import create_token
from edgekv.store.memory import MemoryStore, new_id

_T = TypeVar("_T")
ROOT = Path(__file__).resolve().parents[2]


class ProxyClock:
    """A clock whose source can be swapped (the session server follows each test's clock)."""

    def __init__(self, target: Callable[[], float] = time.time) -> None:
        self.target = target

    def __call__(self) -> float:
        return self.target()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_healthy(
    url: str, timeout: float = 20.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"central server exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"central server at {url} did not become healthy")


class AccessLog(logging.Handler):
    """Counts the requests one central server answered, from its access log (`edgekv.access`),
    as `"METHOD route"`: route is `values`, `keys`, `bulk`, `bulk/get`, `bulk/delete`, or the
    path itself outside a namespace. Only records of the server's own thread count."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.requests: Counter[str] = Counter()
        self.thread: threading.Thread | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if threading.current_thread() is not self.thread:
            return
        method, raw_path = record.args[1], str(record.args[2])  # type: ignore[index]
        path = raw_path.split("?")[0]
        parts = path.split("/")  # "", client, v4, accounts, a, storage, kv, namespaces, ns, ...
        route = path
        if len(parts) > 9 and parts[5:8] == ["storage", "kv", "namespaces"]:
            route = parts[9]
            if route == "bulk" and len(parts) > 10:
                route = f"bulk/{parts[10]}"
        self.requests[f"{method} {route}"] += 1

    def __getitem__(self, name: str) -> int:
        return self.requests[name]


class InProcessCentral:
    """`target`: a Store (used from the server's thread), or a directory (SQLite, opened by the
    app on its own loop). `access_log` counts every request the server answered."""

    def __init__(self, target: Store | Path, clock: Callable[[], float] = time.time) -> None:
        self.target = target
        self.clock = clock
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: uvicorn.Server | None = None
        self._app: EdgeKVApp | None = None
        self.url = ""
        self.access_log = AccessLog()
        self._level = logging.NOTSET

    def __enter__(self) -> InProcessCentral:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self._app = create_app(self.target, clock=self.clock, sweep_interval=None)
        logger = logging.getLogger("edgekv.access")
        self._level = logger.level
        logger.setLevel(logging.INFO)
        logger.addHandler(self.access_log)
        config = uvicorn.Config(
            self._app,
            lifespan="on",
            log_level="warning",
            access_log=False,
            ws="none",
            timeout_keep_alive=30,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, args=(sock,), daemon=True)
        self.access_log.thread = self._thread
        self._thread.start()
        wait_healthy(self.url)
        return self

    def _run(self, sock: socket.socket) -> None:
        async def serve() -> None:
            self.loop = asyncio.get_running_loop()
            assert self._server is not None
            await self._server.serve(sockets=[sock])

        asyncio.run(serve())

    @property
    def store(self) -> Store:
        assert self._app is not None
        return self._app.client.store

    def call(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run a coroutine on the server's loop (the store belongs to that thread)."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def new_account(self) -> tuple[str, str]:
        account, token = new_id(), secrets.token_urlsafe(30)

        async def provision() -> None:
            await self.store.ensure_account(account)
            await create_token(self.store, account, secret=token)

        self.call(provision())
        return account, token

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        logger = logging.getLogger("edgekv.access")
        logger.removeHandler(self.access_log)
        logger.setLevel(self._level)
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)


class SessionCentral(InProcessCentral):
    def __init__(self) -> None:
        self.clock: ProxyClock = ProxyClock()
        super().__init__(MemoryStore(), self.clock)


def serve_command(data_dir: Path, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "edgekv",
        "serve",
        "--data",
        str(data_dir),
        "--port",
        str(port),
        "--quiet",
    ]


class SubprocessCentral:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.account_id = new_id()
        self.token = secrets.token_urlsafe(30)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = dict(os.environ, EDGEKV_ACCOUNT_ID=self.account_id, EDGEKV_API_TOKEN=self.token)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT), str(ROOT / "src"), env.get("PYTHONPATH", "")) if p
        )
        self.proc = subprocess.Popen(
            serve_command(self.data_dir, self.port),
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_healthy(self.url, proc=self.proc)

    def kill(self) -> None:
        """SIGKILL by PID: nothing is flushed, as in a crash."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def __enter__(self) -> SubprocessCentral:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                # Short: right after a restart that followed a SIGKILL, `edgekv serve` on granian
                # has been seen to ignore SIGTERM (reported); the test is over either way.
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None
