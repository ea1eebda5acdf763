"""Embedding an ASGI server (granian or uvicorn) in the running event loop.

Every edgekv server (`edgekv serve`, `dev`, `edge`) is one process with one event loop: the app
is started and stopped around the server (no ASGI lifespan), SIGTERM/SIGINT stop the listener,
requests in flight finish. Both servers are supported; the default was chosen by measurement
(docs/dependencies.md, bench/bench_rest.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Literal, TypeVar

from edgekv.asgi.types import ASGIApp

__all__ = [
    "DEFAULT_SERVER",
    "ServerName",
    "Stopped",
    "TLSFiles",
    "check_listen",
    "claim_listen",
    "serve_asgi",
    "stop_signals",
    "unless_stopped",
]

T = TypeVar("T")
ServerName = Literal["granian", "uvicorn"]
DEFAULT_SERVER: ServerName = "granian"
TLSFiles = tuple[Path, Path]
"""The PEM files of a TLS listener: its certificate (chain) and its private key (they may be one
file)."""


def check_listen(host: str, port: int) -> None:
    """Raise OSError if `host:port` cannot be bound (in use, unknown address, no permission)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
        probe.bind(address)


def claim_listen(host: str, port: int) -> socket.socket | None:
    """Make sure this process is the only server on `host:port`, or raise OSError(EADDRINUSE).

    granian binds with SO_REUSEPORT, so a second server on a busy port would start and share
    its connections with the first at random. Two checks, kept for the server's life by holding
    the returned socket: a probe bind without SO_REUSEPORT fails while anything listens there;
    and (Linux) an abstract Unix socket named after the address, which only one process can
    hold, closes the window where two servers start at the same moment. Port 0 (any free
    port) needs neither: None."""
    if port == 0:
        return None
    check_listen(host, port)
    if not sys.platform.startswith("linux"):
        return None
    claim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        claim.bind(f"\0edgekv-listen-{host}-{port}")
    except OSError:
        claim.close()
        raise OSError(
            errno.EADDRINUSE, "Address already in use (another edgekv server is starting on it)"
        ) from None
    return claim


class Stopped(Exception):
    """SIGTERM/SIGINT came while the server was still starting (see `unless_stopped`)."""


@contextlib.asynccontextmanager
async def stop_signals() -> AsyncIterator[asyncio.Event]:
    """SIGTERM/SIGINT set the yielded event from now on, through the running loop: a server
    enters this first thing, so a signal during its startup (opening a store that recovers
    after a crash, loading a worker) is seen at once instead of killing the process midway or
    waiting for the listener. Pass the event to `serve_asgi(stop=...)`."""
    stop = asyncio.Event()
    undo = _install_signals(stop)
    try:
        yield stop
    finally:
        undo()


async def unless_stopped(stop: asyncio.Event, work: Awaitable[T]) -> T:
    """The result of `work`, unless `stop` is set first: then `work` is cancelled and
    `Stopped` raised."""
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise Stopped
    return task.result()


def _install_signals(stop: asyncio.Event) -> Callable[[], None]:
    """SIGTERM/SIGINT set `stop`; returns the undo."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)

    def undo() -> None:
        for sig in signals:
            loop.remove_signal_handler(sig)

    return undo


async def _stop_when(event: asyncio.Event, stop: Callable[[], None], app: Any = None) -> None:
    await event.wait()
    drain = getattr(app, "drain", None)
    if drain is not None:
        drain()  # an app holding long polls answers them now: they must not hold up the stop
    stop()


async def _serve_granian(
    app: ASGIApp,
    host: str,
    port: int,
    ready: Callable[[], None],
    stop: asyncio.Event,
    tls: TLSFiles | None,
) -> None:
    from granian.constants import Interfaces
    from granian.server.embed import Server

    server = Server(
        app,
        address=host,
        port=port,
        interface=Interfaces.ASGINL,  # the app is started and stopped around the server
        log_enabled=True,
        # "error": granian warns at every start that embedding is experimental; its error
        # lines (a failing worker) still show.
        log_level="error",  # type: ignore[arg-type]  # granian accepts the enum's value
        log_access=False,  # our own access log (accesslog.py) has the fields we want
        websockets=False,
        backlog=2048,
        ssl_cert=None if tls is None else tls[0],
        ssl_key=None if tls is None else tls[1],
    )
    server.on_startup(ready)
    watcher = asyncio.create_task(_stop_when(stop, server.stop, app))
    try:
        await server.serve()
    finally:
        watcher.cancel()


async def _serve_uvicorn(
    app: ASGIApp,
    host: str,
    port: int,
    ready: Callable[[], None],
    stop: asyncio.Event,
    tls: TLSFiles | None,
) -> None:
    import uvicorn

    class _Server(uvicorn.Server):
        # uvicorn re-raises a captured SIGTERM once stopped, which would kill the process
        # before the store is closed: our own handlers set `stop` instead.
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started:
                ready()

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="off",  # the app is started and stopped around the server
        access_log=False,
        log_config=None,
        log_level="warning",
        ws="none",
        backlog=2048,
        ssl_certfile=None if tls is None else tls[0],
        ssl_keyfile=None if tls is None else tls[1],
    )
    server = _Server(config)

    def exit_() -> None:
        server.should_exit = True

    watcher = asyncio.create_task(_stop_when(stop, exit_, app))
    try:
        await server.serve()
    finally:
        watcher.cancel()


async def serve_asgi(
    app: ASGIApp,
    host: str,
    port: int,
    *,
    server: ServerName = DEFAULT_SERVER,
    ready: Callable[[], None] | None = None,
    stop: asyncio.Event | None = None,
    tls: TLSFiles | None = None,
) -> None:
    """Serve `app` in the running loop until `stop` is set (default: until SIGTERM/SIGINT);
    `ready()` is called once it listens. Requests in flight finish before it returns. `tls`:
    serve `https://` with these PEM files instead of plain HTTP."""
    on_ready = ready or (lambda: None)
    claim = claim_listen(host, port)
    undo = None
    if stop is None:
        stop = asyncio.Event()
        undo = _install_signals(stop)
    try:
        if server == "granian":
            await _serve_granian(app, host, port, on_ready, stop, tls)
        elif server == "uvicorn":
            await _serve_uvicorn(app, host, port, on_ready, stop, tls)
        else:
            raise ValueError(f"unknown ASGI server {server!r}")
    finally:
        if undo is not None:
            undo()
        if claim is not None:
            claim.close()
