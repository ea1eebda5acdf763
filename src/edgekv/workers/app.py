"""The ASGI application that serves one worker: `GET /healthz`, the worker's handler for every
other request, errors turned into short 500s (traceback in the log), `ctx.wait_until` work run
after the response, and (for `edgekv dev`) reloading when the worker's files change.

Written against raw ASGI rather than a framework: the runtime adds one small object per request
on top of the handler, which keeps a worker close to a bare ASGI app in throughput.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path

import orjson

from edgekv import wire
from edgekv._client import Client
from edgekv._exceptions import ClientDisconnected, KVError
from edgekv.asgi.accesslog import AccessLog
from edgekv.asgi.body import Body
from edgekv.asgi.lifespan import serve_lifespan
from edgekv.asgi.types import Receive, Scope, Send
from edgekv.dash.mount import PREFIX, DevConsole
from edgekv.edge.stats import cache_metrics, stats_payload
from edgekv.metrics import Metrics
from edgekv.workers.asgi import shutdown_lifespans
from edgekv.workers.bindings import check_namespaces, ensure_namespaces, make_env
from edgekv.workers.config import ConfigError, WorkerConfig
from edgekv.workers.context import BackgroundTasks, ExecutionContext, response_sent
from edgekv.workers.http import BodyTooLarge, Response, encode_headers, from_asgi
from edgekv.workers.loader import Worker, WorkerImportError, file_stamp, load_worker

__all__ = ["HEALTH_PATH", "METRICS_PATH", "STATS_PATH", "WorkerApp"]

log = logging.getLogger("edgekv.workers")

HEALTH_PATH = wire.HEALTH_PATH
READY_PATH = wire.READY_PATH
STATS_PATH = PREFIX + "/stats"  # the location cache's counters (JSON), for operators
METRICS_PATH = "/metrics"  # a location's counters in Prometheus text (`edgekv edge` only)
"""Answered by the runtime itself (200 `ok`); a worker never sees requests for it."""

_ERROR_BODY = b"Internal Server Error: the worker raised an exception\n"
_BAD_BODY = b"Bad Request: the request body is incomplete or malformed (chunked framing)\n"
_TEXT = (b"content-type", b"text/plain;charset=UTF-8")
_CLOSE = (b"connection", b"close")
# Every path the runtime answers itself is one of these or under PREFIX (stats, console).
_RUNTIME_PATHS = frozenset({HEALTH_PATH, READY_PATH, METRICS_PATH})


async def _send_plain(
    send: Send, status: int, body: bytes, head: bool = False, close: bool = False
) -> None:
    headers = [_TEXT, (b"content-length", str(len(body)).encode())]
    if close:
        headers.append(_CLOSE)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


class WorkerApp:
    """Serve the worker of `config` with its bindings from `client`.

    `local=True` (edgekv dev) creates missing binding namespaces at startup; otherwise (edgekv
    edge) they must exist on the central server. `reload=True` polls the worker's files (and the
    config) every `reload_interval` seconds in a background task and swaps in the new version;
    a version that fails to load is reported in the log and the previous one keeps serving.
    `startup()` (also run by ASGI lifespan startup, or by the first request) opens the store and
    prepares the bindings; `shutdown()` lets `wait_until` work drain (for at most
    `drain_timeout` seconds) and closes the store. `access_log`: one line per request
    (default: the `edgekv.access` logger).
    """

    def __init__(
        self,
        config: WorkerConfig,
        client: Client,
        *,
        local: bool = True,
        reload: bool = False,
        reload_interval: float = 0.5,
        drain_timeout: float = 10.0,
        remote_name: str = "the central server",
        access_log: AccessLog | None = None,
    ) -> None:
        if config.main is None:
            raise ConfigError(f'{config.path.name}: "main" is missing')
        self.config = config
        self.client = client
        self.local = local
        self.reload = reload
        self.reload_interval = reload_interval
        self.drain_timeout = drain_timeout
        self.remote_name = remote_name
        self.access_log = access_log or AccessLog()
        self.env = make_env(client, config)
        # Imported here, before any server starts, so a broken worker stops the command at once.
        self.worker: Worker = load_worker(config.main, self.env)
        self.startup_error: BaseException | None = None
        # the worker's requests (op "fetch") and, at a location, the cache's counters
        self.metrics = Metrics()
        self.metrics.add_collector(lambda: cache_metrics(self.client._store))
        # `edgekv dev`: the dashboard and a REST API of the local store under /__edgekv
        self.console = DevConsole(client) if local else None
        self._tasks = BackgroundTasks()
        self._config_stamp = file_stamp(config.path)
        self._watcher: asyncio.Task[None] | None = None
        self._started = False
        self._starting: asyncio.Lock | None = None

    # -- lifetime --------------------------------------------------------------------------
    async def startup(self) -> None:
        """Open the store and make sure every binding has its namespace (idempotent)."""
        if self._started:
            return
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._started:
                return
            await self._prepare_bindings(self.config)
            if self.reload:
                self._watcher = asyncio.create_task(self._watch(), name="edgekv-reload")
            self._started = True

    async def _prepare_bindings(self, config: WorkerConfig) -> None:
        if self.local:
            await ensure_namespaces(self.client, config)
        else:
            await check_namespaces(self.client, config, self.remote_name)
        if not config.kv_namespaces:
            await self.client.list_namespaces()  # opens the store all the same

    async def shutdown(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        await self._tasks.drain(self.drain_timeout)
        await shutdown_lifespans()  # of ASGI apps the worker served through asgi.fetch
        await self.client.aclose()
        self.access_log.flush()
        self._started = False

    def _failed(self, exc: Exception) -> None:
        self.startup_error = exc

    # -- requests --------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http":
            if kind == "lifespan":
                await serve_lifespan(receive, send, self.startup, self.shutdown, self._failed)
            elif kind == "websocket":
                await send({"type": "websocket.close", "code": 1003})
            return
        method = scope["method"]
        path = scope["path"]
        # One test keeps the runtime's own paths off a worker request's way.
        if (path in _RUNTIME_PATHS or path.startswith(PREFIX)) and await self._runtime(
            scope, receive, send, method, path
        ):
            return
        if not self._started:  # a server without lifespan support: start on first request
            await self.startup()

        started = time.perf_counter()
        body = Body(receive)
        request = from_asgi(scope, body)
        ctx = ExecutionContext(self._tasks)
        status, size = 500, len(_ERROR_BODY)
        try:
            try:
                response = await self.worker.handle(request, ctx)
                if not isinstance(response, Response):
                    raise TypeError(
                        f"the worker returned {type(response).__name__}, expected a Response"
                    )
                headers = encode_headers(response)
            except ClientDisconnected:
                # Gone mid-body, or malformed chunked framing that granian reports the same
                # way (and answers 500 to if nothing is sent): the client's fault, a 400.
                status, size = 400, len(_BAD_BODY)
                await _send_plain(send, 400, _BAD_BODY, close=True)
                return
            except BodyTooLarge as exc:
                log.warning("%s %s: %s", method, scope["path"], exc)
                status, size = 413, 0
                await _send_plain(send, 413, b"Payload Too Large\n", close=True)
                return
            except Exception:
                log.exception("%s %s: the worker raised an exception", method, scope["path"])
                await _send_plain(send, 500, _ERROR_BODY, close=body.unread(scope["headers"]))
                return
            if body.unread(scope["headers"]):
                headers.append(_CLOSE)  # body bytes left on the wire: do not reuse the connection
            status = response.status
            size = await _send_response(send, response, headers, method == "HEAD")
        finally:
            response_sent(ctx)
            self.metrics.observe("fetch", status, time.perf_counter() - started)
            self.access_log.request(scope, status, started, size)

    async def _runtime(
        self, scope: Scope, receive: Receive, send: Send, method: str, path: str
    ) -> bool:
        """Answer a path of the runtime's own (health, readiness, console, metrics, stats);
        False when `path` is not one (it goes to the worker)."""
        if path == HEALTH_PATH and method in ("GET", "HEAD"):
            await _send_plain(send, 200, b"ok\n", method == "HEAD")
            return True
        if path == READY_PATH and method in ("GET", "HEAD"):
            # Ready when the store answers: the local store (dev) or the centre (edge).
            try:
                await self.client.ping()
            except KVError as exc:
                reason = f"store unavailable: {exc.detail}\n".encode()
                await _send_plain(send, 503, reason, method == "HEAD")
                return True
            await _send_plain(send, 200, b"ready\n", method == "HEAD")
            return True
        if self.console is not None and self.console.handles(path):
            await self.console(scope, receive, send)
            return True
        if path == METRICS_PATH and method == "GET" and not self.local:
            await self._send_metrics(send)
            return True
        if path == STATS_PATH and method == "GET":
            payload = orjson.dumps(stats_payload(self.client.store))
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(payload)),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": payload})
            return True
        return False

    async def _send_metrics(self, send: Send) -> None:
        body = self.metrics.prometheus().encode()
        headers = [
            (b"content-type", b"text/plain; version=0.0.4; charset=utf-8"),
            (b"content-length", b"%d" % len(body)),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    # -- reload ----------------------------------------------------------------------------
    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.reload_interval)
            try:
                config_changed = file_stamp(self.config.path) != self._config_stamp
                if config_changed or self.worker.changed():
                    await self._reload(config_changed)
            except Exception:
                log.exception("reloading the worker failed; still serving the previous version")

    async def _reload(self, config_changed: bool) -> None:
        config, env = self.config, self.env
        if config_changed:
            self._config_stamp = file_stamp(self.config.path)
            try:
                config = self.config.reload()
            except ConfigError as exc:
                log.error("%s; still serving the previous version", exc)
                return
            await self._prepare_bindings(config)
            env = make_env(self.client, config)
        assert config.main is not None
        try:
            worker = load_worker(config.main, env, previous=self.worker)
        except ConfigError as exc:
            details = exc.details if isinstance(exc, WorkerImportError) else ""
            log.error("%s%s; still serving the previous version", details, exc)
            # Do not retry until the files change again.
            self.worker.stamps = {p: file_stamp(p) for p in {*self.worker.stamps, config.main}}
            return
        self.config, self.env, self.worker = config, env, worker
        self._tasks.spawn(shutdown_lifespans())  # the old version's ASGI apps
        log.info("reloaded %s", _display(config.main))


async def _send_response(
    send: Send, response: Response, headers: list[tuple[bytes, bytes]], head: bool
) -> int:
    """Send it; returns the body bytes sent."""
    body = response.body
    if isinstance(body, bytes):
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if head else body})
        return 0 if head else len(body)
    size = 0
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    try:
        if not head:
            async for chunk in body:
                data = chunk if isinstance(chunk, bytes) else _to_bytes(chunk)
                size += len(data)
                await send({"type": "http.response.body", "body": data, "more_body": True})
    except Exception:
        # Too late for a 500: end the body and let the log tell what happened.
        log.exception("the worker's response stream raised an exception")
    await send({"type": "http.response.body", "body": b""})
    return size


def _to_bytes(chunk: object) -> bytes:
    if isinstance(chunk, str):
        return chunk.encode()
    if isinstance(chunk, bytearray | memoryview):
        return bytes(chunk)
    raise TypeError(f"a streamed body must yield bytes, not {type(chunk).__name__}")


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
