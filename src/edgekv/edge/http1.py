"""A lean HTTP/1.1 keep-alive client: how a location sends every call to its centre.

Why not httpx: measured on loopback against `edgekv serve` (bench/bench_edge.py), httpx costs
~2,400 Python function calls per request: ~1,100 requests/s at concurrency 1 and a collapse at
concurrency 64 (130-200 requests/s, p99 0.4-2.9 s), where this pool serves several times more
with a p99 of a few ms; for 64 concurrent puts ~350/s against ~7,000/s. `RemoteStore` sends
every call through it (reads, writes, multipart, namespaces, bulk; `edgekv.edge.transport`),
unless told `fast_client=False`. aiohttp, the library candidate, was measured too
(bench/bench_http_clients.py): about half this pool's reads/s at concurrency 64 and 2-3x its CPU
per read, so it was not adopted (docs/dependencies.md, "HTTP client of locations").

Scope, deliberately small: `http://` and `https://` (TLS through the `ssl` module, on the same
asyncio streams), requests the caller built (path already percent-encoded), responses with
Content-Length, chunked, or read-to-close bodies; no redirects, no proxies, no compression.
A request that fails on a *reused* connection before any byte of an answer arrived is retried
once on a new connection (the server may have closed an idle keep-alive connection). KV writes
are idempotent, so a retry is harmless for them; a namespace create retried after the server
processed it but died before answering would answer 10014 (title taken). Every request has one
overall deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Answer", "Http1Pool", "ProtocolError"]

_HEAD_LIMIT = 64 * 1024  # status line + headers


class ProtocolError(Exception):
    """The server's answer was not HTTP/1.1 as this client understands it."""


class Answer:
    """Status, headers (lowercase names) and body of one response."""

    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status_code: int, headers: dict[str, str], content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content


class _Connection:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()

    async def exchange(self, request: bytes) -> tuple[Answer, bool]:
        """Send one request, read its answer; returns it and whether the connection is
        reusable. Raises `_NoAnswer` when the connection died before the answer began."""
        self.writer.write(request)
        reader = self.reader
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                raise _NoAnswer from None
            raise ProtocolError("connection closed inside the response head") from None
        except ConnectionError:
            raise _NoAnswer from None
        except asyncio.LimitOverrunError:
            raise ProtocolError("response head too large") from None
        lines = head[:-4].split(b"\r\n")
        status_line = lines[0]
        if not status_line.startswith(b"HTTP/1.") or len(status_line) < 12:
            raise ProtocolError(f"bad status line {status_line[:40]!r}")
        status = int(status_line[9:12])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                raise ProtocolError(f"bad header line {line[:40]!r}")
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        keep = status_line.startswith(b"HTTP/1.1") and headers.get("connection", "") != "close"
        length = headers.get("content-length")
        if status in (204, 304) or 100 <= status < 200:
            body = b""
        elif length is not None:
            body = await reader.readexactly(int(length))
        elif "chunked" in headers.get("transfer-encoding", ""):
            body = await self._chunked()
        else:
            body = await reader.read()  # until the server closes
            keep = False
        return Answer(status, headers, body), keep

    async def _chunked(self) -> bytes:
        reader = self.reader
        parts: list[bytes] = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0], 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                    pass
                return b"".join(parts)
            parts.append((await reader.readexactly(size + 2))[:-2])


class _NoAnswer(Exception):
    """The connection failed before the first byte of an answer."""


class Http1Pool:
    """Keep-alive connections to one `http://host:port` or `https://host:port` (LIFO reuse, at
    most `max_connections` open at once; further requests wait for one, within their deadline).
    `ssl_context` verifies an `https://` server (default: `ssl.create_default_context()`); the
    TLS handshake counts toward `connect_timeout`."""

    def __init__(
        self,
        url: str,
        *,
        headers: dict[str, str],
        max_connections: int,
        timeout: float,
        connect_timeout: float,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"Http1Pool serves http:// and https:// URLs, not {url!r}")
        self.host = parts.hostname
        tls = parts.scheme == "https"
        self.port = parts.port or (443 if tls else 80)
        self._tls: dict[str, Any] = {}
        if tls:
            self._tls = {
                "ssl": ssl_context or ssl.create_default_context(),
                "server_hostname": self.host,
                "ssl_handshake_timeout": connect_timeout,
            }
        self.prefix = parts.path.rstrip("/")
        host = parts.netloc.encode("idna")
        fixed = b"".join(
            f"{k}: {v}\r\n".encode("latin-1") for k, v in headers.items() if k.lower() != "host"
        )
        self._fixed = b"host: " + host + b"\r\n" + fixed
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[_Connection] = []
        self._closed = False

    async def request(
        self,
        method: str,
        target: str,
        body: bytes = b"",
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """One exchange. `target`: path (percent-encoded) and query, below the base URL;
        `headers`: more request headers (e.g. If-Match). Raises OSError, TimeoutError,
        ProtocolError or asyncio.IncompleteReadError."""
        head = f"{method} {self.prefix}{target} HTTP/1.1\r\n".encode("latin-1") + self._fixed
        if body or method in ("POST", "PUT"):
            head += b"content-length: %d\r\n" % len(body)
        if content_type:
            head += f"content-type: {content_type}\r\n".encode("latin-1")
        if headers:
            head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode("latin-1")
        request = head + b"\r\n" + body
        async with asyncio.timeout(self.timeout), self._slots:
            for attempt in (0, 1):
                # The retry takes a new connection: the other idle ones are as old as the one
                # that just failed, and likely closed by the server's keep-alive timeout too.
                conn = self._idle.pop() if self._idle and attempt == 0 else None
                reused = conn is not None
                if conn is None:
                    conn = await self._connect()
                try:
                    answer, keep = await conn.exchange(request)
                except _NoAnswer:
                    conn.close()
                    if reused and attempt == 0:
                        continue  # a keep-alive connection the server had closed: once more
                    raise ConnectionResetError("connection closed before the answer") from None
                except BaseException:
                    conn.close()  # state unknown (timeout, cancellation, bad answer)
                    raise
                if keep and not self._closed:
                    self._idle.append(conn)
                else:
                    conn.close()
                return answer
        raise AssertionError("unreachable")  # pragma: no cover

    async def _connect(self) -> _Connection:
        async with asyncio.timeout(self.connect_timeout):
            reader, writer = await asyncio.open_connection(
                self.host, self.port, limit=_HEAD_LIMIT, **self._tls
            )
        return _Connection(reader, writer)

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
