"""The KV backend's HTTP/1.1 layer, spoken to byte by byte over its Unix socket (what workerd
sends, and what it must never be sent): reason phrases, keep-alive, chunked puts refused while
streaming, raw paths decoded once, the private socket directory."""

from __future__ import annotations

import asyncio
import contextlib
import stat
from collections.abc import AsyncIterator

import orjson
import pytest

import edgekv
from edgekv.workers.workerd import BackendServer, KVBackend

NS = "0123456789abcdef0123456789abcdef"
HEAD = b"Host: fake-host\r\nX-KV-Namespace: " + NS.encode() + b"\r\n"


@pytest.fixture
async def backend() -> AsyncIterator[BackendServer]:
    client = edgekv.open()
    ns = await client.create_namespace("t", namespace_id=NS)
    server = BackendServer(KVBackend({NS: ns}))
    await server.start()
    try:
        yield server
    finally:
        await server.aclose()
        await client.aclose()


class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def exchange(self, request: bytes) -> tuple[bytes, dict[bytes, bytes], bytes]:
        """Send one request; the status line, headers (lowercase) and body of the answer."""
        self.writer.write(request)
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 10)
        status, *lines = head[:-4].split(b"\r\n")
        headers = dict(line.split(b": ", 1) for line in lines)
        body = await self.reader.readexactly(int(headers[b"content-length"]))
        return status, headers, body


_OPEN: list[Conn] = []


async def connect(server: BackendServer) -> Conn:
    conn = Conn(*await asyncio.open_unix_connection(str(server.path)))
    _OPEN.append(conn)
    return conn


@pytest.fixture(autouse=True)
async def _close_connections() -> AsyncIterator[None]:
    yield
    while _OPEN:
        writer = _OPEN.pop().writer
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def test_keep_alive_and_reason_phrases(backend: BackendServer) -> None:
    conn = await connect(backend)
    status, headers, body = await conn.exchange(
        b"GET /nope?urlencoded=true HTTP/1.1\r\n" + HEAD + b"\r\n"
    )
    assert status == b"HTTP/1.1 404 Not Found" and headers[b"content-length"] == b"0"
    request = (
        b"PUT /k?urlencoded=true&expiration_ttl=5 HTTP/1.1\r\n"
        + HEAD
        + b"Content-Length: 1\r\n\r\nv"
    )
    status, _, _ = await conn.exchange(request)
    assert status == (
        b"HTTP/1.1 400 Invalid expiration_ttl of 5. Expiration TTL must be at least 60."
    )
    meta = '{"u":"🤓"}'.encode()
    put = b"PUT /k?urlencoded=true HTTP/1.1\r\n" + HEAD + b"CF-KV-Metadata: " + meta
    status, _, _ = await conn.exchange(put + b"\r\nContent-Length: 5\r\n\r\nhello")
    assert status == b"HTTP/1.1 200 OK"
    status, headers, body = await conn.exchange(
        b"GET /k?urlencoded=true HTTP/1.1\r\n" + HEAD + b"\r\n"
    )
    assert (status, body) == (b"HTTP/1.1 200 OK", b"hello")
    assert headers[b"cf-kv-metadata"] == meta  # raw UTF-8 both ways
    status, _, _ = await conn.exchange(
        b"DELETE /missing?urlencoded=true HTTP/1.1\r\n" + HEAD + b"Content-Length: 0\r\n\r\n"
    )
    assert status == b"HTTP/1.1 200 OK"  # 404 would make delete() throw in JS


async def test_a_chunked_put_over_the_limit_is_refused_and_the_connection_stays(
    backend: BackendServer,
) -> None:
    conn = await connect(backend)
    limit = 25 * 1024 * 1024
    block = b"b" * 65536
    chunks = [b"%x\r\n%s\r\n" % (len(block), block)] * (limit // len(block)) + [
        b"1\r\nb\r\n0\r\n\r\n"
    ]
    head = b"PUT /big?urlencoded=true HTTP/1.1\r\n" + HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
    status, _, _ = await conn.exchange(head + b"".join(chunks))
    assert status == f"HTTP/1.1 413 Value length of {limit + 1} exceeds limit of {limit}.".encode()
    status, _, _ = await conn.exchange(b"GET /big?urlencoded=true HTTP/1.1\r\n" + HEAD + b"\r\n")
    assert status == b"HTTP/1.1 404 Not Found"  # nothing stored, same connection
    small = b"PUT /s?urlencoded=true HTTP/1.1\r\n" + HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
    status, _, _ = await conn.exchange(small + b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
    assert status == b"HTTP/1.1 200 OK"
    _, _, body = await conn.exchange(b"GET /s?urlencoded=true HTTP/1.1\r\n" + HEAD + b"\r\n")
    assert body == b"abcde"


async def test_raw_paths_are_decoded_once(backend: BackendServer) -> None:
    conn = await connect(backend)
    for path, key in [
        (b"/plus+sign", "plus+sign"),
        (b"/%252F", "%2F"),
        (b"/a%2Fb", "a/b"),
        (b"/bulk%2Fget", "bulk/get"),
        (b"/what%3Fx=1&y", "what?x=1&y"),
    ]:
        put = (
            b"PUT " + path + b"?urlencoded=true HTTP/1.1\r\n" + HEAD + b"Content-Length: 1\r\n\r\nv"
        )
        status, _, _ = await conn.exchange(put)
        assert status == b"HTTP/1.1 200 OK", path
        status, _, body = await conn.exchange(b"GET / HTTP/1.1\r\n" + HEAD + b"\r\n")
        names = [k["name"] for k in orjson.loads(body)["keys"]]
        assert key in names, (path, names)
    status, _, _ = await conn.exchange(
        b"GET /%ED%A0%80x?urlencoded=true HTTP/1.1\r\n" + HEAD + b"\r\n"
    )
    assert status == b"HTTP/1.1 400 Key name must be valid Unicode (no lone surrogates)."
    status, _, _ = await conn.exchange(b"GET /%FF?urlencoded=true HTTP/1.1\r\n" + HEAD + b"\r\n")
    assert status == b"HTTP/1.1 400 Key name must be valid UTF-8"
    status, _, _ = await conn.exchange(b"GET /a/b HTTP/1.1\r\n" + HEAD + b"\r\n")
    assert status == b"HTTP/1.1 404 Not Found"  # never one segment: no key


async def test_list_and_bulk_shapes(backend: BackendServer) -> None:
    conn = await connect(backend)
    put = (
        b"PUT /m?urlencoded=true HTTP/1.1\r\n"
        + HEAD
        + b'CF-KV-Metadata: "s"\r\nContent-Length: 2\r\n\r\n{}'
    )
    await conn.exchange(put)
    _, headers, body = await conn.exchange(b"GET /?prefix=m HTTP/1.1\r\n" + HEAD + b"\r\n")
    # List: metadata as the JSON text received (workerd parses it); no cursor when complete.
    assert orjson.loads(body) == {"keys": [{"name": "m", "metadata": '"s"'}], "list_complete": True}
    assert b"cf-cache-status" not in headers
    bulk = orjson.dumps({"keys": ["m", "x"], "type": "json", "withMetadata": True})
    request = b"POST /bulk/get HTTP/1.1\r\n" + HEAD + b"Content-Length: %d\r\n\r\n" % len(bulk)
    status, _, body = await conn.exchange(request + bulk)
    # Bulk: metadata as a JSON value (workerd does not parse it there).
    assert orjson.loads(body) == {"m": {"value": {}, "metadata": "s"}, "x": None}
    huge = b'{"keys": ["' + b"k" * 1_100_000 + b'"]}'
    request = b"POST /bulk/get HTTP/1.1\r\n" + HEAD + b"Content-Length: %d\r\n\r\n" % len(huge)
    status, _, _ = await conn.exchange(request + huge)
    assert status == b"HTTP/1.1 413 Request body exceeds 1048576 bytes"
    status, _, _ = await conn.exchange(
        b"POST /bulk/get HTTP/1.1\r\n" + HEAD + b"Content-Length: 3\r\n\r\n[1]"
    )
    assert status == b'HTTP/1.1 400 Request body must be a JSON object with a "keys" array'


async def test_only_configured_namespaces_and_only_http(backend: BackendServer) -> None:
    conn = await connect(backend)
    other = b"Host: x\r\nX-KV-Namespace: " + b"f" * 32 + b"\r\n"
    status, _, _ = await conn.exchange(b"GET /k?urlencoded=true HTTP/1.1\r\n" + other + b"\r\n")
    assert status == b"HTTP/1.1 403 Unknown namespace for this backend"
    status, _, _ = await conn.exchange(b"GET /k HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == b"HTTP/1.1 403 Unknown namespace for this backend"
    status, _, _ = await conn.exchange(b"PATCH /k HTTP/1.1\r\n" + HEAD + b"\r\n")
    assert status == b"HTTP/1.1 405 Method Not Allowed"
    garbage = await connect(backend)
    garbage.writer.write(b"NOT HTTP AT ALL\r\n\r\n")
    answer = await asyncio.wait_for(garbage.reader.read(), 10)  # answered, then closed
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")


async def test_oversized_heads_are_refused_and_closed(backend: BackendServer) -> None:
    for request, status in [
        (b"GET /" + b"k" * 70_000 + b" HTTP/1.1\r\n" + HEAD + b"\r\n", b"414 URI Too Long"),
        (b"GET /k HTTP/1.1\r\n" + HEAD + b"X-Big: " + b"v" * 70_000 + b"\r\n\r\n", b"431 "),
    ]:
        conn = await connect(backend)
        conn.writer.write(request)
        answer = await asyncio.wait_for(conn.reader.read(), 10)
        assert answer.startswith(b"HTTP/1.1 " + status), answer[:80]
        assert b"connection: close" in answer


async def test_a_body_past_the_hard_cap_is_cut_off() -> None:
    client = edgekv.open()
    ns = await client.create_namespace("t", namespace_id=NS)
    server = BackendServer(KVBackend({NS: ns}), body_max_bytes=100_000)
    await server.start()
    try:
        conn = await connect(server)
        head = b"PUT /k?urlencoded=true HTTP/1.1\r\n" + HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
        conn.writer.write(head + b"10000\r\n" + b"x" * 0x10000 + b"\r\n" * 1)
        conn.writer.write(b"10000\r\n" + b"x" * 0x10000 + b"\r\n")
        answer = await asyncio.wait_for(conn.reader.read(), 10)
        assert answer.startswith(b"HTTP/1.1 413 Request body too large\r\n")
        assert await ns.get("k") is None
    finally:
        await server.aclose()
        await client.aclose()


async def test_a_client_gone_mid_body_stores_nothing_and_logs_no_error(
    backend: BackendServer, caplog: pytest.LogCaptureFixture
) -> None:
    conn = await connect(backend)
    head = b"PUT /half?urlencoded=true HTTP/1.1\r\n" + HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
    conn.writer.write(head + b"5\r\nabc")
    await conn.writer.drain()
    conn.writer.close()
    await asyncio.sleep(0.2)
    after = await connect(backend)  # the server is fine
    status, _, _ = await after.exchange(b"GET /half?urlencoded=true HTTP/1.1\r\n" + HEAD + b"\r\n")
    assert status == b"HTTP/1.1 404 Not Found"
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_the_socket_directory_is_private_and_removed(backend: BackendServer) -> None:
    directory = backend.path.parent
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert backend.address == f"unix:{backend.path}"
    await backend.aclose()
    assert not directory.exists()
