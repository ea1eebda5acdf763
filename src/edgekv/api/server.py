"""Running the central server: open the store, bootstrap, serve HTTP until SIGTERM/SIGINT.

One process, one event loop (uvloop when installed): the server is stateless over its store, so
more capacity means more processes behind a balancer (PostgreSQL), not workers sharing an
in-memory state. The ASGI server is embedded in that loop (`edgekv.asgi.server`).

On SIGTERM/SIGINT the listener stops accepting, requests in flight finish, the store is closed
(every acknowledged write was committed before its 200 anyway). What the operator reads
(credentials, one-line errors) is the command's business (`edgekv.cli.serve`): this module
reports through `on_credentials`, `StartupError` and the `edgekv.server` logger.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekv._client import Client
from edgekv._exceptions import KVError, StoreError
from edgekv._types import DEFAULT_FEED_HISTORY
from edgekv.api.app import create_app
from edgekv.api.bootstrap import CREDENTIALS_FILE, Credentials, bootstrap
from edgekv.asgi.accesslog import AccessLog
from edgekv.asgi.server import (
    DEFAULT_SERVER,
    ServerName,
    Stopped,
    TLSFiles,
    check_listen,
    serve_asgi,
    stop_signals,
    unless_stopped,
)
from edgekv.metrics import Metrics
from edgekv.store import is_database_url, open_store, shown

__all__ = ["StartupError", "run"]

log = logging.getLogger("edgekv.server")


class StartupError(Exception):
    """The server cannot start (address in use, store unreachable or unusable): one line for
    the operator."""


def _reason(exc: BaseException) -> str:
    if isinstance(exc, StoreError):
        return exc.detail
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return str(exc) or type(exc).__name__


def _described(target: str | Path) -> str:
    """The store for the start line: the engine and where its data is (an absolute path: a
    relative default such as .edgekv depends on where the command ran)."""
    if is_database_url(target):
        return shown(target)
    return f"SQLite in {Path(target).resolve()}"


def _credentials_hint(data_dir: Path | None) -> str:
    """Where the operator finds a token on a later start (the first start printed one)."""
    if os.environ.get("EDGEKV_ACCOUNT_ID") and os.environ.get("EDGEKV_API_TOKEN"):
        return "the account and token of EDGEKV_ACCOUNT_ID / EDGEKV_API_TOKEN"
    if data_dir is not None and (data_dir / CREDENTIALS_FILE).exists():
        return f"{(data_dir / CREDENTIALS_FILE).resolve()} (written at the first start)"
    return "printed at the first start; `edgekv token create --account-id A` makes another"


@dataclass(frozen=True, slots=True)
class _Options:
    """What `run` was given, handed down whole to the coroutines that start the server."""

    target: str | Path
    data_dir: Path | None
    host: str
    port: int
    server: ServerName
    access_log: bool
    on_credentials: Callable[[Credentials], None]
    tls: TLSFiles | None
    metrics: bool
    feed_history: int


async def _main(options: _Options) -> None:
    async with stop_signals() as stop:
        try:
            await _start_and_serve(options, stop)
        except Stopped:
            log.info("stopped during startup")


async def _start_and_serve(options: _Options, stop: asyncio.Event) -> None:
    target, host, port, tls = options.target, options.host, options.port, options.tls
    try:
        store = await unless_stopped(stop, open_store(target, feed_history=options.feed_history))
    except (StoreError, KVError, OSError, sqlite3.Error) as exc:
        raise StartupError(f"cannot open the store {shown(target)}: {_reason(exc)}") from None
    client = Client(store, account_id=os.environ.get("EDGEKV_ACCOUNT_ID") or None)
    try:
        try:
            await unless_stopped(stop, client.connect())
            credentials = await unless_stopped(stop, bootstrap(client.store, options.data_dir))
        except (StoreError, KVError, OSError, sqlite3.Error) as exc:
            raise StartupError(
                f"cannot prepare the store {shown(target)}: {_reason(exc)}"
            ) from None
        if credentials is not None:
            options.on_credentials(credentials)
        else:
            log.info("credentials: %s", _credentials_hint(options.data_dir))
        app = create_app(
            client,
            access_log=AccessLog(sys.stderr, enabled=options.access_log),
            metrics=Metrics(enabled=options.metrics),
            dashboard=True,
        )
        described = _described(target)

        def ready() -> None:
            log.info(
                "listening on %s://%s:%d (REST API under /client/v4, store %s, %s)",
                "http" if tls is None else "https",
                host,
                port,
                described,
                options.server,
            )

        try:
            await serve_asgi(
                app, host, port, server=options.server, ready=ready, stop=stop, tls=tls
            )
        except OSError as exc:  # the port was taken between the first check and now
            raise StartupError(f"cannot listen on {host}:{port}: {_reason(exc)}") from None
        finally:
            await app.shutdown()  # flushes the access log; the store closes below
        log.info("stopped")
    finally:
        await client.aclose()


def _log_credentials(credentials: Credentials) -> None:
    log.warning("created account %s and its admin API token", credentials.account_id)


def run(
    target: str | Path,
    *,
    data_dir: Path | None,
    host: str = "127.0.0.1",
    port: int = 8787,
    server: ServerName = DEFAULT_SERVER,
    access_log: bool = True,
    on_credentials: Callable[[Credentials], None] = _log_credentials,
    tls: TLSFiles | None = None,
    metrics: bool = True,
    feed_history: int = DEFAULT_FEED_HISTORY,
) -> None:
    """Blocking: the whole life of `edgekv serve` over the store `target` names
    (`edgekv.store.open_store`). `on_credentials` gets admin credentials created at first
    start (to show them once); `tls` serves `https://` (`edgekv.asgi.server.serve_asgi`);
    `feed_history`: changes kept per namespace. Raises `StartupError` when it cannot start."""
    try:
        check_listen(host, port)
    except OSError as exc:
        # Before anything starts: the servers report this with a traceback (granian with a
        # Rust backtrace too) from deep inside their startup.
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    runner: Any = None
    with contextlib.suppress(ImportError):
        import uvloop

        runner = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=runner) as loop_runner:
        loop_runner.run(
            _main(
                _Options(
                    target,
                    data_dir,
                    host,
                    port,
                    server,
                    access_log,
                    on_credentials,
                    tls,
                    metrics,
                    feed_history,
                )
            )
        )
