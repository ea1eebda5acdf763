"""Real central servers on loopback for the location tests.

- `InProcessCentral(store, clock)`: the REST app over a given store, served by uvicorn in a
  thread of the test process (its own event loop) on a free port. Tests can wrap the store in a
  `CountingStore` to count what reaches the centre, and give the server a FakeClock.
- `SessionCentral`: one `InProcessCentral` over a `MemoryStore` for a whole session; every test
  gets a fresh account and token (`new_account()`), and its clock follows the test's FakeClock.
- `SubprocessCentral(data_dir, *options)`: `python -m edgekv serve` over SQLite (and `options`)
  in a child process, with EDGEKV_ACCOUNT_ID / EDGEKV_API_TOKEN; `kill()` (SIGKILL by PID) and
  `start()` again (the process handling is tests/servers.py's).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import uvicorn

from edgekv._types import Store
from edgekv.api import EdgeKVApp, create_app
from edgekv.api.auth import create_token
from edgekv.store.memory import MemoryStore, new_id
from tests.servers import CentralProcess, wait_healthy

_T = TypeVar("_T")


class ProxyClock:
    """A clock whose source can be swapped (the session server follows each test's clock)."""

    def __init__(self, target: Callable[[], float] = time.time) -> None:
        self.target = target

    def __call__(self) -> float:
        return self.target()


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

    def __exit__(self, *exc_info: object) -> None:
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


class SubprocessCentral(CentralProcess):
    """`python -m edgekv serve --data DATA_DIR --quiet`, output discarded; `kill()` and `start()`
    again (same port, same data). Leaving the block stops it, SIGKILL after a short wait."""

    def __init__(self, data_dir: Path, *options: str) -> None:
        self.data_dir = data_dir
        super().__init__(["--data", str(data_dir), "--quiet", *options], account=new_id())

    @property
    def account_id(self) -> str:
        return self.account

    def __exit__(self, *exc_info: object) -> None:
        if self.running():
            # Short: right after a restart that followed a SIGKILL, `edgekv serve` on granian
            # has been seen to ignore SIGTERM (reported); the test is over either way.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.stop(timeout=3)
