"""TLS on the fast path: the keep-alive pool (`edge/http1.py`) and `RemoteStore` against real
loopback TLS servers, with certificates made for each test run (trustme)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme

import edgekv
from edgekv._exceptions import StoreUnavailable
from edgekv._types import Entry
from edgekv.api import create_app
from edgekv.api.auth import create_token
from edgekv.asgi.server import serve_asgi
from edgekv.edge.http1 import Http1Pool
from edgekv.edge.remote import RemoteStore
from edgekv.edge.transport import HttpxTransport, PoolTransport
from edgekv.store.memory import MemoryStore, new_id
from tests.edge.canned import CannedServer
from tests.servers import free_port


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture
def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def tls_server(context: ssl.SSLContext, answer: bytes, close: bool = False) -> CannedServer:
    return CannedServer(answer, context=context, close=close)


def _pool(url: str, context: ssl.SSLContext | None, timeout: float = 5.0) -> Http1Pool:
    return Http1Pool(
        url,
        headers={"authorization": "Bearer t"},
        max_connections=4,
        timeout=timeout,
        connect_timeout=timeout,
        ssl_context=context,
    )


async def test_keep_alive_over_tls(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"
    async with tls_server(server_context, answer) as server:
        pool = _pool(server.url, client_context)
        try:
            for _ in range(5):
                got = await pool.request("PUT", "/x", b"body", "text/plain")
                assert (got.status_code, got.content) == (200, b"hello")
        finally:
            await pool.aclose()
    assert (server.requests, server.connections) == (5, 1)  # one handshake, five requests


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nhello",  # read to close (TLS EOF)
    ],
    ids=["chunked", "read-to-close"],
)
async def test_bodies_over_tls(
    answer: bytes, server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    async with tls_server(server_context, answer, close=b"close" in answer) as server:
        pool = _pool(server.url, client_context)
        try:
            for _ in range(2):
                assert (await pool.request("GET", "/x")).content == b"hello"
        finally:
            await pool.aclose()


async def test_an_untrusted_certificate_is_unavailable_not_a_hang(
    server_context: ssl.SSLContext,
) -> None:
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"
    async with tls_server(server_context, answer) as server:
        for fast in (True, False):
            # The default trust (certifi's roots, as httpx's) does not know this test CA.
            store = RemoteStore(server.url, token="t", account_id="a" * 32, fast_client=fast)
            try:
                with pytest.raises(StoreUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
                    await store.get("n", "k", now=0)
            finally:
                await store.aclose()
    assert server.requests == 0


async def test_a_certificate_for_another_host_is_refused(
    ca: trustme.CA, client_context: ssl.SSLContext
) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("centre.example").configure_cert(context)
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"
    async with tls_server(context, answer) as server:
        pool = _pool(server.url, client_context)
        try:
            with pytest.raises(ssl.SSLCertVerificationError):
                await pool.request("GET", "/x")
        finally:
            await pool.aclose()


async def test_a_plain_http_server_behind_an_https_url_fails_fast(
    client_context: ssl.SSLContext,
) -> None:
    async def plain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(plain, "127.0.0.1", 0)
    url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    store = RemoteStore(
        url, token="t", account_id="a" * 32, timeout=2.0, ssl_context=client_context
    )
    try:
        with pytest.raises(StoreUnavailable, match="unreachable"):
            await store.get("n", "k", now=0)
    finally:
        await store.aclose()
        server.close()
        await server.wait_closed()


# -- the central server's own TLS (granian), end to end -------------------------------------------
@pytest.fixture(scope="module")
def cert_files(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("tls")
    cert = ca.issue_cert("127.0.0.1")
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert.cert_chain_pems[0].write_to_path(cert_path)
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(cert_path, append=True)
    cert.private_key_pem.write_to_path(key_path)
    return cert_path, key_path


@pytest.fixture
async def tls_central(cert_files: tuple[Path, Path]) -> AsyncIterator[tuple[str, str, str]]:
    """The REST app over a MemoryStore, served by granian with TLS in this event loop."""
    store = MemoryStore()
    account, token = new_id(), "tls-test-token"
    await store.ensure_account(account)
    await create_token(store, account, secret=token)
    app = create_app(store, sweep_interval=None)
    await app.startup()
    port = free_port()
    ready, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        serve_asgi(app, "127.0.0.1", port, ready=ready.set, stop=stop, tls=cert_files)
    )
    await asyncio.wait_for(ready.wait(), 20)
    try:
        yield f"https://127.0.0.1:{port}", token, account
    finally:
        stop.set()
        await task
        await app.shutdown()


@pytest.mark.parametrize("fast_client", [True, False], ids=["pool", "httpx"])
async def test_the_binding_through_an_https_centre(
    tls_central: tuple[str, str, str], client_context: ssl.SSLContext, fast_client: bool
) -> None:
    url, token, account = tls_central
    store = RemoteStore(
        url, token=token, account_id=account, ssl_context=client_context, fast_client=fast_client
    )
    assert isinstance(store._transport, PoolTransport if fast_client else HttpxTransport)
    async with edgekv.Client(store, account_id=account, sweep_interval=None) as kv:
        ns = await kv.create_namespace("over tls")
        await ns.put("a/b", "v", metadata={"m": 1})
        await ns.put_many([("k1", "1"), ("k2", b"\x00")])
        got = await ns.get_with_metadata("a/b")
        assert (got.value, got.metadata) == ("v", {"m": 1})
        assert await ns.get(["k1", "k2"], "text") == {"k1": "1", "k2": "\x00"}
        assert [k.name for k in (await ns.list()).keys] == ["a/b", "k1", "k2"]
        await ns.delete("a/b")
        assert await ns.get("a/b") is None
        assert [n.title for n in await kv.list_namespaces()] == ["over tls"]
    # The same store type, given nothing but the URL, trusts what httpx trusts (not this CA).
    plain = RemoteStore(url, token=token, account_id=account, fast_client=fast_client)
    with pytest.raises(StoreUnavailable):
        await plain.list_namespaces(account)
    await plain.aclose()


async def test_concurrent_requests_share_tls_connections(
    tls_central: tuple[str, str, str], client_context: ssl.SSLContext
) -> None:
    url, token, account = tls_central
    store = RemoteStore(
        url, token=token, account_id=account, ssl_context=client_context, max_connections=8
    )
    try:
        info = await store.create_namespace(account, "many")
        await asyncio.gather(*(store.put(info.id, f"k{i}", Entry(b"v")) for i in range(64)))
        found = await asyncio.gather(*(store.get(info.id, f"k{i}", now=0) for i in range(64)))
        assert all(entry is not None and entry.value == b"v" for entry in found)
    finally:
        await store.aclose()
