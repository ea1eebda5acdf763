"""transport.py and the one result check of `RemoteStore`, against real loopback servers that
answer garbage: whatever the transport, an answer that is not the protocol is a 503."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest

import edgekv
from edgekv import KVError
from edgekv._exceptions import StoreUnavailable, TooManyNamespaces
from edgekv._types import Entry
from edgekv.edge.remote import RemoteError, RemoteStore
from edgekv.edge.transport import HttpxTransport, PoolTransport
from tests.edge.canned import CannedServer, answer

ACCOUNT = "a" * 32


def canned(status: int, body: bytes, headers: dict[str, str] | None = None) -> CannedServer:
    return CannedServer(answer(status, body, headers))


Call = Callable[[RemoteStore], Awaitable[Any]]
CALLS: dict[str, Call] = {
    "create_namespace": lambda s: s.create_namespace(ACCOUNT, "t"),
    "list_namespaces": lambda s: s.list_namespaces(ACCOUNT),
    "get_namespace": lambda s: s.get_namespace(ACCOUNT, "n"),
    "rename_namespace": lambda s: s.rename_namespace(ACCOUNT, "n", "t2"),
    "delete_namespace": lambda s: s.delete_namespace(ACCOUNT, "n"),
    "list_keys": lambda s: s.list_keys("n", prefix="", after=None, limit=10, now=0),
    "get_many": lambda s: s.get_many("n", ["a", "b"], now=0),
    "put": lambda s: s.put("n", "k", Entry(b"v")),
    "put_metadata": lambda s: s.put("n", "k", Entry(b"v", None, '{"a":1}')),
    "put_many": lambda s: s.put_many("n", [("k", Entry(b"v"))]),
    "delete": lambda s: s.delete("n", "k"),
    "delete_many": lambda s: s.delete_many("n", ["k"]),
}
GARBAGE = [
    b"<html>hello from a captive portal</html>",
    b"[1, 2, 3]",  # JSON, not an envelope
    b'{"success": true, "result": 5}',  # an envelope whose result has the wrong shape
]


@pytest.fixture(params=[True, False], ids=["pool", "httpx"])
def fast_client(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.mark.parametrize("body", GARBAGE, ids=["html", "list", "result-5"])
@pytest.mark.parametrize("call", sorted(CALLS))
async def test_a_200_that_is_not_the_protocol_is_unavailable(
    call: str, body: bytes, fast_client: bool
) -> None:
    async with canned(200, body) as centre:
        store = RemoteStore(centre.url, token="t", account_id=ACCOUNT, fast_client=fast_client)
        try:
            # Bulk writes and deletes ignore their result: only a body that is no envelope is
            # wrong. A single put must also say which seq it made (`edgekv-seq`), so a canned
            # 200 without it is malformed whatever its body.
            ignores_result = (
                call in ("put_many", "delete", "delete_many", "delete_namespace")
                and body != GARBAGE[1]
            )
            if ignores_result and body.startswith(b"{"):
                await CALLS[call](store)
            else:
                with pytest.raises(StoreUnavailable, match="malformed answer"):
                    await CALLS[call](store)
            assert centre.requests >= 1
        finally:
            await store.aclose()


async def test_malformed_value_headers_are_unavailable(fast_client: bool) -> None:
    # "_w" is base64url of the byte 0xff: not UTF-8, so no metadata JSON.
    for headers in ({"expiration": "soon"}, {"edgekv-metadata": "_w"}, {"edgekv-metadata": "a"}):
        async with canned(200, b"v", headers) as centre:
            store = RemoteStore(centre.url, token="t", account_id=ACCOUNT, fast_client=fast_client)
            try:
                with pytest.raises(StoreUnavailable, match="malformed"):
                    await store.get("n", "k", now=0)
            finally:
                await store.aclose()


def _envelope(code: int, message: str) -> bytes:
    return orjson.dumps(
        {"success": False, "errors": [{"code": code, "message": message}], "messages": []}
    )


@pytest.mark.parametrize(
    ("status", "body", "error", "detail"),
    [
        (500, _envelope(10000, "get: 'internal error'"), StoreUnavailable, "internal error"),
        (503, b"", StoreUnavailable, "503"),
        (502, b"<html>bad gateway</html>", StoreUnavailable, "bad gateway"),
        (400, _envelope(10018, "create namespace: 'too many'"), TooManyNamespaces, "1000"),
        (404, _envelope(7003, "No route for that URI"), RemoteError, "No route for that URI"),
        (429, _envelope(10022, "put: 'slow down'"), RemoteError, "slow down"),
        (200, b"not json", StoreUnavailable, "malformed"),
    ],
)
async def test_error_mapping(
    status: int, body: bytes, error: type, detail: str, fast_client: bool
) -> None:
    async with canned(status, body) as centre:
        store = RemoteStore(centre.url, token="t", account_id=ACCOUNT, fast_client=fast_client)
        try:
            with pytest.raises(error) as info:
                await store.list_namespaces(ACCOUNT)
        finally:
            await store.aclose()
    assert detail in str(info.value)
    if isinstance(info.value, RemoteError):
        assert info.value.status == status


@pytest.mark.parametrize("op", ["create_namespace", "list"])
async def test_the_binding_sees_a_503_kverror(op: str, fast_client: bool) -> None:
    async with canned(200, b"not json at all") as centre:
        store = RemoteStore(centre.url, token="t", account_id=ACCOUNT, fast_client=fast_client)
        async with edgekv.Client(store, account_id=ACCOUNT) as kv:
            with pytest.raises(KVError) as info:
                if op == "create_namespace":
                    await kv.create_namespace("title")
                else:
                    await kv.namespace("0" * 32).list()
            assert info.value.status == 503
            assert "malformed answer" in info.value.message
            prefix = "CREATE_NAMESPACE" if op == "create_namespace" else "GET"  # as Workers KV
            assert info.value.message.startswith(f"KV {prefix} failed: 503")


async def test_the_transport_is_chosen_once() -> None:
    async with canned(200, b'{"success": true, "result": null}') as centre:
        pooled = RemoteStore(centre.url, token="t", account_id=ACCOUNT)
        slow = RemoteStore(centre.url, token="t", account_id=ACCOUNT, fast_client=False)
        try:
            assert isinstance(pooled._transport, PoolTransport)
            assert isinstance(slow._transport, HttpxTransport)
            for store in (pooled, slow):
                await store.delete("n", "k")
            assert centre.requests == 2
        finally:
            await pooled.aclose()
            await slow.aclose()


@pytest.fixture
async def closed_port() -> AsyncIterator[int]:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    server.close()
    await server.wait_closed()
    yield port


async def test_both_transports_map_a_refused_connection(
    closed_port: int, fast_client: bool
) -> None:
    url = f"http://127.0.0.1:{closed_port}"
    store = RemoteStore(url, token="t", account_id=ACCOUNT, fast_client=fast_client)
    with pytest.raises(StoreUnavailable, match="unreachable"):
        await store.get("n", "k", now=0)
    await store.aclose()


@pytest.mark.parametrize(
    ("env", "pooled"),
    [
        ({}, True),
        ({"HTTPS_PROXY": "http://proxy.invalid:3128"}, False),
        ({"https_proxy": "http://proxy.invalid:3128", "NO_PROXY": "centre.example"}, True),
        ({"ALL_PROXY": "http://proxy.invalid:3128"}, False),
        ({"HTTP_PROXY": "http://proxy.invalid:3128"}, True),  # not for https://
    ],
)
async def test_an_https_centre_behind_a_proxy_stays_on_httpx(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], pooled: bool
) -> None:
    for name in (
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "NO_PROXY",
        "no_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    store = RemoteStore("https://centre.example", token="t", account_id=ACCOUNT)
    try:
        assert isinstance(store._transport, PoolTransport if pooled else HttpxTransport)
    finally:
        await store.aclose()
    # http:// centres always went to the pool, proxy or not.
    plain = RemoteStore("http://centre.example", token="t", account_id=ACCOUNT)
    assert isinstance(plain._transport, PoolTransport)
    await plain.aclose()


async def test_a_failing_change_feed_is_unavailable(fast_client: bool) -> None:
    # Long polls go on a transport of their own; they get the same answer checks as every call.
    for status, body in ((503, b""), (200, b"<html>portal</html>"), (200, b'{"result": []}')):
        async with canned(status, body) as centre:
            store = RemoteStore(centre.url, token="t", account_id=ACCOUNT, fast_client=fast_client)
            try:
                with pytest.raises(StoreUnavailable):
                    await store.changes("n", since=0)
            finally:
                await store.aclose()
