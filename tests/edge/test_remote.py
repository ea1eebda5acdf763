"""`RemoteStore` against a real central server on loopback (the session server of conftest.py):
round trips, key encoding, error mapping, never hanging."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import pytest

import edgekv
from edgekv import KVError
from edgekv._exceptions import (
    NamespaceNotFound,
    NamespaceTitleTaken,
    StoreUnavailable,
)
from edgekv._types import Entry, TokenRecord
from edgekv.edge.remote import RemoteError, RemoteStore
from tests.conftest import FakeClock
from tests.edge.servers import SessionCentral
from tests.servers import free_port


@pytest.fixture
async def remote(
    session_central: SessionCentral, clock: FakeClock
) -> AsyncIterator[tuple[edgekv.Client, SessionCentral]]:
    session_central.clock.target = clock
    account, token = session_central.new_account()
    async with edgekv.open(session_central.url, token=token, account_id=account, clock=clock) as kv:
        yield kv, session_central


async def test_open_a_central_server_by_url(
    remote: tuple[edgekv.Client, SessionCentral],
) -> None:
    kv, _ = remote
    assert isinstance(kv.store, RemoteStore)
    ns = await kv.create_namespace("by url")
    assert [n.title for n in await kv.list_namespaces()] == ["by url"]
    await ns.put("k", "v", metadata={"é": [1, 2.5, None]}, expiration_ttl=120)
    result = await ns.get_with_metadata("k")
    assert (result.value, result.metadata, result.cache_status) == (
        "v",
        {"é": [1, 2.5, None]},
        None,
    )
    assert (await ns.list()).keys[0].expiration == kv.clock() // 1 + 120


async def test_keys_travel_as_one_segment(remote: tuple[edgekv.Client, SessionCentral]) -> None:
    kv, _ = remote
    ns = await kv.create_namespace("keys")
    keys = ["a/b", "%2F", "a?b#c", "dir/a b:c!", "...", "./x", "é€😀", "a%b", "+ &="]
    for i, key in enumerate(keys):
        await ns.put(key, str(i))
    for i, key in enumerate(keys):
        assert await ns.get(key) == str(i)
    assert await ns.get(keys) == {k: str(i) for i, k in enumerate(keys)}
    assert sorted(k.name for k in (await ns.list()).keys) == sorted(keys, key=str.encode)
    await ns.delete_many(keys[:4])
    await ns.delete("...")
    assert len((await ns.list()).keys) == len(keys) - 5


async def test_one_request_per_read_and_per_page(
    remote: tuple[edgekv.Client, SessionCentral],
) -> None:
    kv, central = remote
    log = central.access_log
    ns = await kv.create_namespace("pages")
    await ns.put_many([(f"k{i:04d}", "v") for i in range(1001)])
    before = log.requests.copy()
    await ns.get("k0000")
    await ns.get("missing")
    await ns.get([f"k{i:04d}" for i in range(100)])
    assert log["GET values"] - before["GET values"] == 2
    assert log["POST bulk/get"] - before["POST bulk/get"] == 1

    def pages() -> int:
        return log["GET keys"]

    start = pages()
    page = await ns.list(limit=999)  # asks 1000: one round trip
    assert (len(page.keys), page.list_complete, pages() - start) == (999, False, 1)
    start = pages()
    page = await ns.list(prefix="k1")  # 1 key: complete in one round trip
    assert (len(page.keys), page.list_complete, pages() - start) == (1, True, 1)
    start = pages()
    page = await ns.list()  # 1000 of 1001: the 1001st probe costs a second, 1-key request
    assert (len(page.keys), page.list_complete, pages() - start) == (1000, False, 2)
    start = pages()
    rest = await ns.list(cursor=page.cursor)
    assert ([k.name for k in rest.keys], rest.list_complete, pages() - start) == (
        ["k1000"],
        True,
        1,
    )
    await ns.delete("k1000")
    start = pages()
    page = await ns.list()  # exactly 1000 left: complete, one round trip
    assert (len(page.keys), page.list_complete, pages() - start) == (1000, True, 1)


async def test_namespace_errors_map_to_store_errors(
    remote: tuple[edgekv.Client, SessionCentral],
) -> None:
    kv, _ = remote
    store = kv.store
    account = kv.account_id
    assert account is not None
    info = await store.create_namespace(account, "taken")
    with pytest.raises(NamespaceTitleTaken):
        await store.create_namespace(account, "taken")
    other = await store.create_namespace(account, "other")
    with pytest.raises(NamespaceTitleTaken):
        await store.rename_namespace(account, other.id, "taken")
    renamed = await store.rename_namespace(account, info.id, "renamed")
    assert (renamed.id, renamed.title, renamed.account_id) == (info.id, "renamed", account)
    assert await store.get_namespace(account, info.id) == renamed
    missing = "0" * 32
    assert await store.get_namespace(account, missing) is None
    for call in (
        store.get(missing, "k", now=0),
        store.get_many(missing, ["k"], now=0),
        store.put(missing, "k", Entry(b"v")),
        store.delete(missing, "k"),
        store.list_keys(missing, prefix="", after=None, limit=10, now=0),
        store.delete_namespace(account, missing),
    ):
        with pytest.raises(NamespaceNotFound):
            await call
    with pytest.raises(KVError) as err:
        await kv.create_namespace("other")
    assert err.value.status == 400


async def test_accounts_and_tokens_stay_on_the_centre(
    remote: tuple[edgekv.Client, SessionCentral],
) -> None:
    kv, _ = remote
    store = kv.store
    assert await store.default_account() == kv.account_id
    assert await store.account_exists(kv.account_id or "")
    assert not await store.account_exists("f" * 32)
    await store.ensure_account(kv.account_id or "")  # its own account: nothing to do
    for call in (
        store.ensure_account("f" * 32),
        store.create_token(TokenRecord("i", "a", "h")),
        store.find_token("h"),
        store.create_namespace(kv.account_id or "", "x", "a" * 32),
    ):
        with pytest.raises(RemoteError) as info:
            await call
        assert info.value.status == 501
    assert await store.purge_expired(2**40) == 0


async def test_a_wrong_token_is_a_clear_error(session_central: SessionCentral) -> None:
    account, _ = session_central.new_account()
    async with edgekv.open(session_central.url, token="wrong", account_id=account) as kv:
        with pytest.raises(KVError) as info:
            await kv.list_namespaces()
        assert info.value.status in (401, 403)
        with pytest.raises(KVError) as info:
            await kv.namespace("0" * 32).get("k")
        assert info.value.status in (401, 403)
        assert str(info.value).startswith(f"KV GET failed: {info.value.status} ")


async def test_remote_needs_token_and_account() -> None:
    with pytest.raises(KVError) as info:
        await edgekv.open("http://127.0.0.1:1").list_namespaces()
    assert info.value.status == 400


# -- a centre that is down or misbehaves: StoreUnavailable (503), quickly -------------------


async def test_refused_connection_is_unavailable_at_once() -> None:
    store = RemoteStore(f"http://127.0.0.1:{free_port()}", token="t", account_id="a" * 32)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await store.get("n", "k", now=0)
    assert time.monotonic() - started < 1
    await store.aclose()


async def test_a_silent_centre_times_out_instead_of_hanging() -> None:
    with socket.socket() as listener:  # accepts connections (backlog), never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        store = RemoteStore(url, token="t", account_id="a" * 32, timeout=0.3)
        started = time.monotonic()
        results = await asyncio.gather(
            store.get("n", "k", now=0),
            store.put("n", "k", Entry(b"v")),
            store.list_keys("n", prefix="", after=None, limit=10, now=0),
            return_exceptions=True,
        )
        assert all(isinstance(r, StoreUnavailable) for r in results)
        assert time.monotonic() - started < 2
        await store.aclose()
