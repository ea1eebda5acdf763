"""limits.py: bodies are capped while they stream in; the 413 comes before the upload ends."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import orjson
import pytest

from tests.api.conftest import Api, codes

MiB = 1024 * 1024
VALUE_LIMIT = 25 * MiB


async def test_value_of_exactly_25_mib_is_fine(api: Api, ns: str) -> None:
    url = f"{api.namespaces}/{ns}/values/big"
    r = await api.http.put(url, content=b"x" * VALUE_LIMIT)
    assert r.status_code == 200, r.text
    assert len((await api.http.get(url)).content) == VALUE_LIMIT


async def test_value_over_25_mib_is_413(api: Api, ns: str) -> None:
    url = f"{api.namespaces}/{ns}/values/big"
    r = await api.http.put(url, content=b"x" * (VALUE_LIMIT + 1))
    assert r.status_code == 413 and codes(r) == [10024]
    assert r.json()["errors"][0]["message"] == (
        "put: 'Value length of 26214401 exceeds limit of 26214400.'"
    )
    r = await api.http.put(url, files={"value": (None, b"x" * (VALUE_LIMIT + 1))})
    assert r.status_code == 413 and codes(r) == [10024]
    assert (await api.http.get(url)).status_code == 404


async def raw_request(api: Api, head: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    parts = urlsplit(api.url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(head.encode())
    await writer.drain()
    return reader, writer


def head(api: Api, method: str, path: str, extra: str) -> str:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {api.token}\r\n{extra}\r\n"
    )


async def read_status(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    status_line = await reader.readline()
    headers = b""
    while (line := await reader.readline()) not in (b"\r\n", b""):
        headers += line
    return int(status_line.split()[1]), headers.lower()


async def test_declared_length_over_limit_is_refused_before_the_body(api: Api, ns: str) -> None:
    path = urlsplit(f"{api.namespaces}/{ns}/bulk").path
    reader, writer = await raw_request(
        api,
        head(api, "PUT", path, "Content-Type: application/json\r\nContent-Length: 1000000000\r\n"),
    )
    try:
        status, headers = await asyncio.wait_for(read_status(reader), 10)  # no body was sent
        assert status == 413
        assert b"connection: close" in headers
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


@pytest.mark.parametrize(
    ("route", "limit"),
    [("values/huge", VALUE_LIMIT), ("bulk", 100_000_000)],
)
async def test_huge_chunked_upload_is_refused_early(
    api: Api, ns: str, route: str, limit: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Stream a 1 GB chunked body; the 413 arrives while it is still being sent."""
    caplog.set_level(logging.INFO, logger="edgekv.access")
    path = urlsplit(f"{api.namespaces}/{ns}/{route}").path
    reader, writer = await raw_request(
        api,
        head(
            api,
            "PUT",
            path,
            "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n",
        ),
    )
    chunk = b"x" * (256 * 1024)
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent = 0
    status_task = asyncio.create_task(read_status(reader))
    try:
        while sent < 1024 * MiB and not status_task.done():
            writer.write(frame)
            try:
                await asyncio.wait_for(writer.drain(), 5)
            except (ConnectionError, TimeoutError):
                break  # the server stopped reading: the answer is on its way
            sent += len(chunk)
        try:
            status, _ = await asyncio.wait_for(status_task, 10)
        except ConnectionError:
            # The server closed the connection with our bytes unread: the kernel's reset (or a
            # broken pipe on our side) can overtake its answer on a loaded machine, and the
            # answer is lost in the socket. The access log shows what was answered.
            for _ in range(100):
                if f'"PUT {path}" 413' in "\n".join(caplog.messages):
                    status = 413
                    break
                await asyncio.sleep(0.01)
            else:
                status = 0
        assert status == 413
        assert sent < limit + 64 * MiB  # refused near the limit, far from 1 GB
    finally:
        status_task.cancel()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    # the server is fine afterwards
    assert (await api.http.get(f"{api.namespaces}/{ns}/keys")).status_code == 200


async def test_bulk_body_under_100_mb_but_large_is_accepted(api: Api, ns: str) -> None:
    # 10,000 pairs of 5 KB: 50 MB of JSON, over any small-body limit, under the bulk one
    items = [{"key": f"k{i}", "value": "v" * 5000} for i in range(10_000)]
    body = orjson.dumps(items)
    assert 40 * MiB < len(body) < 100_000_000
    r = await api.http.put(
        f"{api.namespaces}/{ns}/bulk", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 200, r.text[:300]


async def test_small_json_routes_have_a_small_limit(api: Api, ns: str) -> None:
    body = b'{"keys": ["k"], "pad": "' + b"x" * (2 * MiB) + b'"}'
    r = await api.http.post(f"{api.namespaces}/{ns}/bulk/get", content=body)
    assert r.status_code == 413 and codes(r) == [10024]


async def test_invalid_content_length(api: Api, ns: str) -> None:
    path = urlsplit(f"{api.namespaces}/{ns}/values/k").path
    reader, writer = await raw_request(api, head(api, "PUT", path, "Content-Length: abc\r\n"))
    try:
        status, _ = await asyncio.wait_for(read_status(reader), 10)
        assert status == 400
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def test_chunked_value_a_little_too_large_names_its_full_length(api: Api, ns: str) -> None:
    size = VALUE_LIMIT + 3 * MiB  # within the drain allowance: read to its end, then refused

    async def pieces() -> AsyncIterator[bytes]:
        for _ in range(size // MiB):
            yield b"x" * MiB

    r = await api.http.put(f"{api.namespaces}/{ns}/values/big", content=pieces())
    assert r.status_code == 413 and codes(r) == [10024]
    assert r.json()["errors"][0]["message"] == (
        f"put: 'Value length of {size} exceeds limit of 26214400.'"
    )
    assert "connection" not in r.headers  # the body was read: the connection stays usable
