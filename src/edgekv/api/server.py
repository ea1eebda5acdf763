"""Running the central server: open the store, bootstrap, serve HTTP until SIGTERM/SIGINT.

One process, one event loop (uvloop when installed): the server is stateless over its store, so
more capacity means more processes behind a balancer (PostgreSQL), not workers sharing an
in-memory state. The ASGI server is embedded in that loop (`edgekv.asgi.server`).

On SIGTERM/SIGINT the listener stops accepting, requests in flight finish, the store is closed
(every acknowledged write was committed before its 200 anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import sqlite3
import sys
from pathlib import Path
from typing import Any, cast

import click

from edgekv._client import Client
from edgekv._exceptions import KVError, StoreError
from edgekv._types import DEFAULT_FEED_HISTORY, Store
from edgekv.api.app import create_app
from edgekv.api.bootstrap import CREDENTIALS_FILE, Credentials, bootstrap
from edgekv.asgi.accesslog import AccessLog
from edgekv.asgi.server import (
    DEFAULT_SERVER,
    ServerName,
    Stopped,
    check_listen,
    serve_asgi,
    stop_signals,
    unless_stopped,
)
from edgekv.metrics import Metrics

__all__ = ["DEFAULT_SERVER", "configure_logging", "run"]

log = logging.getLogger("edgekv.server")


def configure_logging(level: int = logging.INFO) -> None:
    """Our lines (access log included) to stderr, one per event, with a timestamp."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("edgekv")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    # asyncpg reports its reconnect attempts during a database outage: same format, no traceback.
    driver = logging.getLogger("asyncpg")
    driver.handlers[:] = [handler]
    driver.setLevel(logging.WARNING)
    driver.propagate = False
    driver.filters[:] = [_drop_traceback]


def _drop_traceback(record: logging.LogRecord) -> bool:
    record.exc_info = None
    record.exc_text = None
    return True


class StartupError(Exception):
    """The server cannot start (store unreachable or unusable): one line for the operator."""


def _reason(exc: BaseException) -> str:
    if isinstance(exc, StoreError):
        return exc.detail
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return str(exc) or type(exc).__name__


def _shown(target: str | Path) -> str:
    """The store, for messages: a directory, or a PostgreSQL URL without its password."""
    text = str(target)
    if text.startswith(("postgresql://", "postgres://")):
        return re.sub(r"://([^:@/]*):[^@/]*@", r"://\1:***@", text)
    return text


def _described(target: str | Path) -> str:
    """The store for the start line: the engine and where its data is (an absolute path: a
    relative default such as .edgekv depends on where the command ran)."""
    if str(target).startswith(("postgresql://", "postgres://")):
        return _shown(target)
    return f"SQLite in {Path(target).resolve()}"


def _credentials_hint(data_dir: Path | None) -> str:
    """Where the operator finds a token on a later start (the first start printed one)."""
    if os.environ.get("EDGEKV_ACCOUNT_ID") and os.environ.get("EDGEKV_API_TOKEN"):
        return "the account and token of EDGEKV_ACCOUNT_ID / EDGEKV_API_TOKEN"
    if data_dir is not None and (data_dir / CREDENTIALS_FILE).exists():
        return f"{(data_dir / CREDENTIALS_FILE).resolve()} (written at the first start)"
    return "printed at the first start; `edgekv token create --account-id A` makes another"


async def _open_store(target: str | Path, feed_history: int = DEFAULT_FEED_HISTORY) -> Store:
    """The engine of `target`. SQLite serves small point reads on the event loop's thread
    (`inline_reads`): a hot GET then skips a thread round trip that costs more than the read."""
    text = str(target)
    if text.startswith(("postgresql://", "postgres://")):
        from edgekv.store.postgres import PostgresStore

        # cast: the engine's methods are typed as returning Awaitable, the protocol's as
        # coroutines; they are interchangeable for callers that only await them.
        return cast(Store, await PostgresStore.open(text, feed_history=feed_history))
    from edgekv.store.sqlite import SQLiteStore

    return await SQLiteStore.open(Path(target), inline_reads=True, feed_history=feed_history)


def _print_credentials(credentials: Credentials) -> None:
    where = f" (saved to {credentials.path}, mode 0600)" if credentials.path else ""
    click.echo(f"Created account {credentials.account_id} and its admin API token{where}:")
    click.echo(f"  EDGEKV_ACCOUNT_ID={credentials.account_id}")
    click.echo(f"  EDGEKV_API_TOKEN={credentials.api_token}")
    click.echo("The token is shown once; keep it secret.")
    sys.stdout.flush()


async def _main(
    target: str | Path,
    data_dir: Path | None,
    host: str,
    port: int,
    server: ServerName,
    access_log: bool,
    metrics: bool = True,
    feed_history: int = DEFAULT_FEED_HISTORY,
) -> None:
    async with stop_signals() as stop:
        try:
            await _start_and_serve(
                target, data_dir, host, port, server, access_log, metrics, stop, feed_history
            )
        except Stopped:
            log.info("stopped during startup")


async def _start_and_serve(
    target: str | Path,
    data_dir: Path | None,
    host: str,
    port: int,
    server: ServerName,
    access_log: bool,
    metrics: bool,
    stop: asyncio.Event,
    feed_history: int = DEFAULT_FEED_HISTORY,
) -> None:
    try:
        store = await unless_stopped(stop, _open_store(target, feed_history))
    except (StoreError, KVError, OSError, sqlite3.Error) as exc:
        raise StartupError(f"cannot open the store {_shown(target)}: {_reason(exc)}") from None
    client = Client(store, account_id=os.environ.get("EDGEKV_ACCOUNT_ID") or None)
    try:
        try:
            await unless_stopped(stop, client._open())
            credentials = await unless_stopped(stop, bootstrap(client.store, data_dir))
        except (StoreError, KVError, OSError, sqlite3.Error) as exc:
            raise StartupError(
                f"cannot prepare the store {_shown(target)}: {_reason(exc)}"
            ) from None
        if credentials is not None:
            _print_credentials(credentials)
        else:
            log.info("credentials: %s", _credentials_hint(data_dir))
        app = create_app(
            client,
            access_log=AccessLog(sys.stderr, enabled=access_log),
            metrics=Metrics(enabled=metrics),
            dashboard=True,
        )
        shown = _described(target)

        def ready() -> None:
            log.info(
                "listening on http://%s:%d (REST API under /client/v4, store %s, %s)",
                host,
                port,
                shown,
                server,
            )

        try:
            await serve_asgi(app, host, port, server=server, ready=ready, stop=stop)
        except OSError as exc:  # the port was taken between the first check and now
            raise StartupError(f"cannot listen on {host}:{port}: {_reason(exc)}") from None
        finally:
            await app.shutdown()  # flushes the access log; the store closes below
        log.info("stopped")
    finally:
        await client.aclose()


def run(
    target: str | Path,
    *,
    data_dir: Path | None,
    host: str = "127.0.0.1",
    port: int = 8787,
    server: ServerName = DEFAULT_SERVER,
    access_log: bool = True,
    metrics: bool = True,
    feed_history: int = DEFAULT_FEED_HISTORY,
) -> None:
    """Blocking: the whole life of `edgekv serve`; `feed_history`: changes kept per namespace."""
    try:
        check_listen(host, port)
    except OSError as exc:
        # Before anything starts: the servers report this with a traceback (granian with a
        # Rust backtrace too) from deep inside their startup.
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
    runner: Any = None
    with contextlib.suppress(ImportError):
        import uvloop

        runner = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=runner) as loop_runner:
        try:
            loop_runner.run(
                _main(target, data_dir, host, port, server, access_log, metrics, feed_history)
            )
        except StartupError as exc:
            raise click.ClickException(str(exc)) from None
