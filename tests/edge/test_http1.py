"""The lean HTTP/1.1 pool against small raw servers on loopback that answer in each way HTTP/1.1
allows (Content-Length, chunked, read-to-close), close idle connections, or misbehave."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from edgekv.edge.http1 import Http1Pool, ProtocolError

Handler = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]  # -> keep the connection


class RawServer:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                if not await self.handler(request, writer):
                    break
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[RawServer]]]:
    servers: list[RawServer] = []

    async def start(handler: Handler) -> RawServer:
        raw = RawServer(handler)
        raw.server = await asyncio.start_server(raw._serve, "127.0.0.1", 0)
        servers.append(raw)
        return raw

    yield start
    for raw in servers:
        assert raw.server is not None
        raw.server.close()
        await raw.server.wait_closed()


def pool(url: str, **options: float) -> Http1Pool:
    settings: dict[str, float] = {"max_connections": 4, "timeout": 2.0, "connect_timeout": 1.0}
    settings.update(options)
    return Http1Pool(url, headers={"authorization": "Bearer t"}, **settings)  # type: ignore[arg-type]


async def test_content_length_keep_alive_and_request_shape(
    serve: Callable[..., Awaitable[RawServer]],
) -> None:
    async def handler(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Thing: a b\r\n\r\nhello")
        return True

    raw = await serve(handler)
    p = pool(raw.url + "/base/")
    for _ in range(3):
        answer = await p.request("GET", "/x%2Fy?q=1")
        assert (answer.status_code, answer.headers["x-thing"], answer.content) == (
            200,
            "a b",
            b"hello",
        )
    answer = await p.request("POST", "/bulk", b'{"a":1}', "application/json")
    assert raw.connections == 1  # one kept-alive connection for all four
    first, post = raw.requests[0], raw.requests[-1]
    assert first.startswith(b"GET /base/x%2Fy?q=1 HTTP/1.1\r\n")
    assert b"\r\nhost: 127.0.0.1:" in first and b"\r\nauthorization: Bearer t\r\n" in first
    assert b'content-length: 7\r\ncontent-type: application/json\r\n\r\n{"a":1}' in post
    await p.aclose()


async def test_chunked_and_read_to_close_bodies(serve: Callable[..., Awaitable[RawServer]]) -> None:
    async def handler(request: bytes, writer: asyncio.StreamWriter) -> bool:
        if b"/chunked" in request:
            writer.write(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n"
            )
            return True
        writer.write(b"HTTP/1.0 404 Not Found\r\n\r\nuntil close")
        return False

    raw = await serve(handler)
    p = pool(raw.url)
    assert (await p.request("GET", "/chunked")).content == b"hello world"
    answer = await p.request("GET", "/old")
    assert (answer.status_code, answer.content) == (404, b"until close")
    assert (await p.request("GET", "/chunked")).content == b"hello world"
    assert raw.connections == 2  # the read-to-close answer ended its connection
    await p.aclose()


async def test_an_idle_connection_closed_by_the_server_is_retried_once(
    serve: Callable[..., Awaitable[RawServer]],
) -> None:
    async def handler(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        return False  # answers, then closes: the pool's idle connection is dead

    raw = await serve(handler)
    p = pool(raw.url)
    for _ in range(3):
        assert (await p.request("GET", "/")).content == b"ok"
    assert raw.connections == 3
    await p.aclose()


async def test_the_retry_takes_a_new_connection_not_another_stale_one(
    serve: Callable[..., Awaitable[RawServer]],
) -> None:
    # Many keep-alive connections idle past the server's keep-alive timeout are all dead: a
    # request that meets one must retry on a fresh connection, not on the next dead one.
    async def handler(request: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.05)  # keeps four requests in flight at once: four connections
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        return False  # then closes each one

    raw = await serve(handler)
    p = pool(raw.url)
    await asyncio.gather(*(p.request("GET", "/") for _ in range(4)))
    await asyncio.sleep(0.05)  # the server has closed all four idle connections
    for _ in range(4):
        assert (await p.request("GET", "/")).content == b"ok"
    await p.aclose()


async def test_connection_close_header_is_honoured(
    serve: Callable[..., Awaitable[RawServer]],
) -> None:
    async def handler(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
        return True

    raw = await serve(handler)
    p = pool(raw.url)
    await p.request("GET", "/")
    await p.request("GET", "/")
    assert raw.connections == 2
    await p.aclose()


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"NOPE\r\n\r\n", ProtocolError),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", ProtocolError),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", asyncio.IncompleteReadError),
        (b"HTTP/1.1 200 OK\r\nContent-Le", ProtocolError),
    ],
)
async def test_bad_answers_raise(
    serve: Callable[..., Awaitable[RawServer]], answer: bytes, error: type[Exception]
) -> None:
    async def handler(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer)
        return False

    raw = await serve(handler)
    p = pool(raw.url)
    with pytest.raises(error):
        await p.request("GET", "/")
    await p.aclose()


async def test_a_silent_server_hits_the_deadline(
    serve: Callable[..., Awaitable[RawServer]],
) -> None:
    async def handler(request: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(10)
        return False

    raw = await serve(handler)
    p = pool(raw.url, timeout=0.2)
    with pytest.raises(TimeoutError):
        await p.request("GET", "/")
    await p.aclose()


async def test_connections_are_bounded(serve: Callable[..., Awaitable[RawServer]]) -> None:
    async def handler(request: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.01)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        return True

    raw = await serve(handler)
    p = pool(raw.url, max_connections=3)
    answers = await asyncio.gather(*(p.request("GET", "/") for _ in range(30)))
    assert {a.content for a in answers} == {b"ok"}
    assert raw.connections == 3
    await p.aclose()


def test_schemes_and_default_ports() -> None:
    # https:// is served over TLS (tests/edge/test_tls.py); other schemes are refused.
    assert pool("http://127.0.0.1:1").port == 1
    assert pool("http://example.com").port == 80
    assert pool("https://example.com").port == 443
    with pytest.raises(ValueError, match="http:// and https://"):
        pool("ftp://example.com")
