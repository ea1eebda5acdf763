"""The HTTP/1.1 side of the KV backend: httptools' parser under an asyncio protocol, on a Unix
socket.

Why not the ASGI servers the rest of edgekv uses: ASGI has no way to set a response's reason
phrase (granian and uvicorn write the standard one), and the reason phrase is the only error
text workerd passes to JavaScript. So this layer writes its own status lines. The parser is
httptools (llhttp, the parser of Node.js; uvicorn's too): it de-chunks stream puts and says
whether a connection stays open. h11 was measured first, in the same place: a JS worker's hot
`env.KV.get` through h11 over asyncio streams served a quarter of the worker's no-KV rate, this
layer over half (docs/dependencies.md, bench/results/workerd.md).

The socket lives in a directory only this user can enter (0700), so only the workerd this
process started (and this user) can reach it: no port, no token on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import cast

import httptools

from edgekv.workers.workerd.backend import Body, Headers, KVBackend, Reply

__all__ = ["BODY_MAX_BYTES", "BackendServer"]

log = logging.getLogger("edgekv.workerd")

BODY_MAX_BYTES = 128 * 1024 * 1024
"""Past this many bytes a request body is refused and the connection closed (a put is refused
with 413 long before: the binding counts, without keeping, all past the 25 MiB value limit)."""
_PAUSE_BYTES = 1024 * 1024  # body bytes buffered before reading from the socket pauses
_HEAD_MAX = 64 * 1024


class BackendServer:
    """Serve `backend` on a Unix socket in a fresh private directory (`.path`), from `start()`
    until `aclose()` (which also removes the directory). A request body past `body_max_bytes`
    is refused (413) and its connection closed."""

    def __init__(self, backend: KVBackend, *, body_max_bytes: int = BODY_MAX_BYTES) -> None:
        self.backend = backend
        self.body_max_bytes = body_max_bytes
        self._dir = Path(tempfile.mkdtemp(prefix="edgekv-kv-"))  # mode 0700
        self.path = self._dir / "kv.sock"
        self._server: asyncio.Server | None = None
        self._connections: set[_Protocol] = set()

    @property
    def address(self) -> str:
        """The address workerd's `external` service uses."""
        return f"unix:{self.path}"

    async def start(self) -> None:
        os.chmod(self._dir, 0o700)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_unix_server(
            lambda: _Protocol(self.backend, self._connections, self.body_max_bytes),
            path=str(self.path),
        )

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            for conn in list(self._connections):
                conn.abort()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
        shutil.rmtree(self._dir, ignore_errors=True)


class _RequestBody:
    """The body of one request as it arrives: an async iterator of chunks."""

    __slots__ = ("chunks", "done", "error", "protocol", "size", "waiter")

    def __init__(self, protocol: _Protocol) -> None:
        self.protocol = protocol
        self.chunks: list[bytes] = []
        self.size = 0  # bytes buffered, not yet taken
        self.done = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def feed(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self.size += len(chunk)
        if self.size > _PAUSE_BYTES:
            self.protocol.pause()
        self._wake()

    def finish(self, error: BaseException | None = None) -> None:
        self.done = True
        self.error = error
        self._wake()

    def __aiter__(self) -> _RequestBody:
        return self

    async def __anext__(self) -> bytes:
        while not self.chunks:
            if self.done:
                if self.error is not None:
                    raise self.error
                raise StopAsyncIteration
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
            self.waiter = None
        chunk = self.chunks.pop(0)
        self.size -= len(chunk)
        if self.size <= _PAUSE_BYTES:
            self.protocol.resume()
        return chunk


class _Request:
    __slots__ = ("body", "headers", "keep_alive", "method", "target")

    def __init__(
        self, method: bytes, target: bytes, headers: Headers, body: _RequestBody, keep: bool
    ) -> None:
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        self.keep_alive = keep


class _Protocol(asyncio.Protocol):
    """One connection: requests parsed as bytes arrive, answered one after the other by a
    task of its own."""

    def __init__(
        self, backend: KVBackend, registry: set[_Protocol], body_max_bytes: int = BODY_MAX_BYTES
    ) -> None:
        self.backend = backend
        self.body_max_bytes = body_max_bytes
        self.registry = registry
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.headers: Headers = []
        self.head_size = 0
        self.current: _Request | None = None
        self.received = 0
        self.queue: asyncio.Queue[_Request | None] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None
        self.paused = False
        self.closed = False

    # -- transport -------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.registry.add(self)
        self.task = asyncio.get_running_loop().create_task(self._serve())

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.registry.discard(self)
        if self.current is not None and not self.current.body.done:
            self.current.body.finish(ConnectionResetError("the connection closed mid-body"))
        self.queue.put_nowait(None)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, b"Upgrade not supported")
        except httptools.HttpParserCallbackError as exc:
            # httptools wraps what a callback raised: our limits, or a bug of ours.
            cause = exc.__context__
            if isinstance(cause, _TooLarge):
                self._fail(cause.status, cause.reason)
            else:
                log.error("KV backend: parsing a request failed", exc_info=cause)
                self._fail(500, b"Internal error of the KV backend")
        except httptools.HttpParserError:
            self._fail(400, b"Bad Request")

    def pause(self) -> None:
        if not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.paused and self.transport is not None and not self.closed:
            self.paused = False
            self.transport.resume_reading()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
        if self.task is not None:
            self.task.cancel()

    def _fail(self, status: int, reason: bytes) -> None:
        """A request that cannot be parsed (or is too large): answer it and close."""
        if self.current is not None and not self.current.body.done:
            self.current.body.finish(ConnectionResetError("the request was refused"))
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(
                b"HTTP/1.1 %d %s\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                % (status, reason)
            )
            self.transport.close()

    # -- parser callbacks --------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []
        self.head_size = 0
        self.received = 0

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.head_size += len(url)
        if self.head_size > _HEAD_MAX:
            raise _TooLarge(414, b"URI Too Long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_size += len(name) + len(value)
        if self.head_size > _HEAD_MAX:
            raise _TooLarge(431, b"Request Header Fields Too Large")
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        parser = self.parser
        request = _Request(
            parser.get_method(),
            self.url,
            self.headers,
            _RequestBody(self),
            parser.should_keep_alive(),
        )
        self.current = request
        self.queue.put_nowait(request)

    def on_body(self, body: bytes) -> None:
        self.received += len(body)
        if self.received > self.body_max_bytes:
            raise _TooLarge(413, b"Request body too large")
        assert self.current is not None
        self.current.body.feed(body)

    def on_message_complete(self) -> None:
        assert self.current is not None
        self.current.body.finish()

    # -- answering ---------------------------------------------------------------------------
    async def _serve(self) -> None:
        while True:
            request = await self.queue.get()
            if request is None or self.closed:
                return
            try:
                reply = await self.backend.handle(
                    request.method, request.target, request.headers, Body(request.body)
                )
                # An answer given before the whole body was read (a refused put): read the
                # rest, so the connection stays usable and workerd is not cut off mid-request.
                async for _ in request.body:
                    pass
            except ConnectionResetError:
                return
            if self.closed or self.transport is None:
                return
            self._write(reply, request.keep_alive)
            if not request.keep_alive:
                self.transport.close()
                return

    def _write(self, reply: Reply, keep_alive: bool) -> None:
        assert self.transport is not None
        body = reply.body
        head = [
            b"HTTP/1.1 %d %s\r\ncontent-length: %d\r\n" % (reply.status, reply.reason, len(body))
        ]
        for name, value in reply.headers:
            head.append(b"%s: %s\r\n" % (name, value))
        if not keep_alive:
            head.append(b"connection: close\r\n")
        head.append(b"\r\n")
        head.append(body)
        self.transport.write(b"".join(head))


class _TooLarge(Exception):
    def __init__(self, status: int, reason: bytes) -> None:
        super().__init__(reason.decode())
        self.status = status
        self.reason = reason
