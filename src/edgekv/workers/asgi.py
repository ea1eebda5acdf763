"""`asgi.fetch(app, request, env)`: answer a worker's request with an ASGI application (FastAPI,
Starlette, ...), as Cloudflare's Python Workers do (`from workers import asgi`):

    from fastapi import FastAPI, Request
    from workers import WorkerEntrypoint, asgi

    app = FastAPI()

    @app.get("/hello")
    async def hello(request: Request):
        env = request.scope["env"]                 # the worker's env: env.KV, vars
        return {"value": await env.KV.get("greeting")}

    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            return await asgi.fetch(app, request, self.env)

The request body is read (within the runtime's limit) and handed to the application in one
message; the response comes back as a `Response`, streamed when the application streams it
(`more_body`). The application's lifespan starts on its first request and ends when the worker
stops (or is reloaded), so startup work runs once per process, not once per request; its state
reaches handlers as `scope["state"]` (a copy per request, as the ASGI spec says). Work the
application does after its response (Starlette's background tasks) goes on as `ctx.wait_until`
work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, MutableMapping
from typing import Any
from urllib.parse import unquote, urlsplit

from edgekv.asgi.types import ASGIApp, Message
from edgekv.workers.context import ExecutionContext
from edgekv.workers.http import Request, Response

__all__ = ["fetch", "shutdown_lifespans", "websocket"]

log = logging.getLogger("edgekv.workers")


_ASGI = {"version": "3.0", "spec_version": "2.3"}
_STREAM_BUFFER = 16  # body chunks the application may be ahead of the client
_SHUTDOWN_GRACE = 5.0  # seconds an application gets to finish its lifespan shutdown
_running: set[asyncio.Task[None]] = set()  # application tasks still running after a response


class _Lifespan:
    """One application's ASGI lifespan: started once, stopped by `shutdown_lifespans`."""

    def __init__(self, app: ASGIApp) -> None:
        loop = asyncio.get_running_loop()
        self.app = app
        self.loop = loop
        self.state: dict[str, Any] = {}
        self.supported = False
        self.ready: asyncio.Future[None] = loop.create_future()
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._started: asyncio.Future[bool] = loop.create_future()
        self._stopped: asyncio.Future[None] = loop.create_future()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="edgekv-asgi-lifespan")
        self._inbox.put_nowait({"type": "lifespan.startup"})
        self.supported = await self._started

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": _ASGI, "state": self.state}
        try:
            await self.app(scope, self._inbox.get, self._send)
        except Exception:
            # Raising before acknowledging startup is how an application says it has no
            # lifespan support (ASGI spec): serve it without one.
            if self._started.done():
                log.exception("the ASGI application's lifespan raised")
        finally:
            if not self._started.done():
                self._started.set_result(False)
            if not self._stopped.done():
                self._stopped.set_result(None)

    async def _send(self, message: Message) -> None:
        kind = message.get("type")
        if kind == "lifespan.startup.complete" and not self._started.done():
            self._started.set_result(True)
        elif kind == "lifespan.startup.failed" and not self._started.done():
            detail = message.get("message") or "no message"
            self._started.set_exception(RuntimeError(f"ASGI lifespan startup failed: {detail}"))
        elif kind == "lifespan.shutdown.failed":
            log.error("ASGI lifespan shutdown failed: %s", message.get("message") or "no message")
        done = kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed")
        if done and not self._stopped.done():
            self._stopped.set_result(None)

    async def stop(self, grace: float) -> None:
        task = self._task
        if task is None or task.done():
            return
        if self.supported:
            self._inbox.put_nowait({"type": "lifespan.shutdown"})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._stopped), grace)
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


_lifespans: dict[int, _Lifespan] = {}  # by id(app); the entry holds the app, so ids stay unique


async def _state(app: ASGIApp) -> dict[str, Any] | None:
    """The lifespan state of `app` (None without lifespan support), starting it on first use."""
    found = _lifespans.get(id(app))
    if found is not None and found.app is app and found.loop is asyncio.get_running_loop():
        await asyncio.shield(found.ready)
        return found.state if found.supported else None
    lifespan = _Lifespan(app)
    _lifespans[id(app)] = lifespan
    try:
        await lifespan.start()
    except BaseException as exc:
        _lifespans.pop(id(app), None)  # the next request tries again
        lifespan.ready.set_exception(exc)
        lifespan.ready.exception()  # retrieved here; requests waiting on it get it too
        raise
    lifespan.ready.set_result(None)
    return lifespan.state if lifespan.supported else None


async def shutdown_lifespans(grace: float = _SHUTDOWN_GRACE) -> None:
    """Run the lifespan shutdown of every application started so far (the worker is stopping,
    or being replaced by a new version)."""
    current = list(_lifespans.items())
    for key, lifespan in current:
        if _lifespans.get(key) is lifespan:
            del _lifespans[key]
    loop = asyncio.get_running_loop()
    late = [t for t in _running if t.get_loop() is loop]
    if late:  # work applications do after their responses (background tasks)
        await asyncio.wait(late, timeout=grace)
    await asyncio.gather(*(ls.stop(grace) for _, ls in current if ls.loop is loop))


def _scope(request: Request, env: Any, state: dict[str, Any] | None) -> dict[str, Any]:
    parts = urlsplit(request.url)
    origin: MutableMapping[str, Any] = getattr(request, "_scope", None) or {}
    raw_path = parts.path or "/"
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": _ASGI,
        "http_version": origin.get("http_version", "1.1"),
        "method": request.method,
        "scheme": parts.scheme,
        "path": unquote(raw_path),
        "raw_path": raw_path.encode("latin-1", "replace"),
        "query_string": parts.query.encode("latin-1", "replace"),
        "root_path": "",
        "headers": [
            (name.encode("latin-1"), value.encode("latin-1"))
            for name, value in request.headers.raw_items()
        ],
        "server": origin.get("server"),
        "client": origin.get("client"),
        "env": env,
    }
    if state is not None:
        scope["state"] = dict(state)
    return scope


async def fetch(app: ASGIApp, request: Request, env: Any, ctx: Any = None) -> Response:
    """The `Response` of ASGI application `app` to `request`, with `env` as `scope["env"]`.
    `ctx` (the worker's `self.ctx`, optional) keeps work the application does after its
    response running as `ctx.wait_until` work."""
    if not isinstance(request, Request):
        raise TypeError(f"asgi.fetch() takes the worker's request, not {type(request).__name__}")
    state = await _state(app)
    body = await request.bytes()
    scope = _scope(request, env, state)

    loop = asyncio.get_running_loop()
    answer: asyncio.Future[Response] = loop.create_future()
    finished = asyncio.Event()  # the response is complete, or its client went away
    chunks: asyncio.Queue[bytes | None] = asyncio.Queue(_STREAM_BUFFER)
    status: int | None = None
    headers: list[tuple[str, str]] = []
    request_sent = False
    streaming = False
    head = request.method == "HEAD"

    async def receive() -> Message:
        nonlocal request_sent
        if not request_sent:
            request_sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await finished.wait()
        return {"type": "http.disconnect"}

    async def put(item: bytes | None) -> None:
        while chunks.full():  # the client reads slower than the application writes
            if finished.is_set():
                return
            waiter = asyncio.ensure_future(finished.wait())
            putter = asyncio.ensure_future(chunks.put(item))
            await asyncio.wait({waiter, putter}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if putter.done():
                return
            putter.cancel()
        if not finished.is_set():
            chunks.put_nowait(item)

    async def stream(first: bytes) -> AsyncIterator[bytes]:
        try:
            if first:
                yield first
            while (chunk := await chunks.get()) is not None:
                if chunk:
                    yield chunk
        finally:
            finished.set()
            while not chunks.empty():  # unblock a pending put
                chunks.get_nowait()

    async def send(message: Message) -> None:
        nonlocal status, headers, streaming
        kind = message.get("type")
        if finished.is_set():
            return  # the response is complete or nobody reads it any more
        if kind == "http.response.start":
            if status is not None:
                raise RuntimeError("the ASGI application sent http.response.start twice")
            status = int(message["status"])
            headers = [
                (bytes(n).decode("latin-1"), bytes(v).decode("latin-1"))
                for n, v in message.get("headers") or ()
            ]
        elif kind == "http.response.body":
            if status is None:
                raise RuntimeError(
                    "the ASGI application sent http.response.body before http.response.start"
                )
            data = bytes(message.get("body") or b"")
            more = bool(message.get("more_body", False))
            if streaming:
                await put(data)
                if not more:
                    await put(None)
            elif more and not head:
                streaming = True
                answer.set_result(Response(stream(data), status, headers))
            else:  # the whole body (a HEAD answer has none: the rest is dropped, not buffered)
                answer.set_result(Response(b"" if head else data, status, headers))
                finished.set()

    async def run() -> None:
        try:
            await app(scope, receive, send)
        except Exception as exc:
            if not answer.done():
                answer.set_exception(exc)
            else:
                log.exception("the ASGI application raised after its response started")
        else:
            if not answer.done():
                answer.set_exception(
                    RuntimeError("the ASGI application returned without sending a response")
                )
        finally:
            if streaming and not finished.is_set():
                await put(None)  # end the body the client is reading

    task = asyncio.create_task(run(), name="edgekv-asgi-request")
    _running.add(task)
    task.add_done_callback(_running.discard)
    if isinstance(ctx, ExecutionContext):
        ctx.wait_until(task)  # a graceful stop lets it finish
    return await answer


async def websocket(app: ASGIApp, request: Request) -> Response:
    """WebSocket upgrades need the JavaScript runtime's WebSocketPair: not available here."""
    raise NotImplementedError("asgi.websocket() is not supported by edgekv (HTTP requests only)")


def __getattr__(name: str) -> Any:
    if name == "env":
        # FastAPI dependency giving the worker's env: `def handler(env=asgi.env)`.
        from fastapi import Depends
        from fastapi import Request as FastAPIRequest

        async def env(request: Any) -> Any:
            return request.scope["env"]

        # Set here, not as a string annotation: FastAPI resolves those in module globals.
        env.__annotations__["request"] = FastAPIRequest
        return Depends(env)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
