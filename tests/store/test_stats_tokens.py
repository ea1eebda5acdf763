"""`Store.namespace_stats` and token listing / revocation, the same on every engine."""

from __future__ import annotations

import asyncio

import pytest

from edgekv._exceptions import NamespaceNotFound
from edgekv._types import Entry, NamespaceStats, Store, TokenRecord

NOW = 1_700_000_000


def size(key: str, value: bytes, metadata: str | None = None) -> int:
    return len(key.encode()) + len(value) + (len(metadata.encode()) if metadata else 0)


async def test_stats_follow_every_kind_of_write(store: Store) -> None:
    acct = await store.default_account()
    ns = await store.create_namespace(acct, "stats")
    other = await store.create_namespace(acct, "other")
    assert await store.namespace_stats(ns.id, now=NOW) == NamespaceStats(0, 0)

    await store.put(ns.id, "a", Entry(b"12345"))
    await store.put(ns.id, "é", Entry(b"xy", metadata='{"n":"ü"}'))  # bytes, not characters
    expected = size("a", b"12345") + size("é", b"xy", '{"n":"ü"}')
    assert await store.namespace_stats(ns.id, now=NOW) == NamespaceStats(2, expected)

    await store.put(ns.id, "a", Entry(b"1"))  # replacing: same count, new size
    expected += size("a", b"1") - size("a", b"12345")
    assert await store.namespace_stats(ns.id, now=NOW) == NamespaceStats(2, expected)

    await store.put_many(ns.id, [(f"k{i}", Entry(b"v" * i)) for i in range(10)])
    await store.put_many(ns.id, [("k1", Entry(b"")), ("k1", Entry(b"zz"))])  # last one wins
    expected += sum(size(f"k{i}", b"v" * i) for i in range(10)) - size("k1", b"v")
    expected += size("k1", b"zz")
    assert await store.namespace_stats(ns.id, now=NOW) == NamespaceStats(12, expected)

    await store.delete(ns.id, "a")
    await store.delete(ns.id, "missing")  # nothing to subtract
    await store.delete_many(ns.id, ["k1", "k2", "k2", "nope"])
    expected -= size("a", b"1") + size("k1", b"zz") + size("k2", b"vv")
    assert await store.namespace_stats(ns.id, now=NOW) == NamespaceStats(9, expected)

    await store.put(other.id, "x", Entry(b"x"))
    assert await store.namespace_stats(ns.id, now=NOW) == NamespaceStats(9, expected)
    assert await store.namespace_stats(other.id, now=NOW) == NamespaceStats(1, 2)


async def test_stats_leave_out_expired_entries_before_and_after_the_purge(store: Store) -> None:
    acct = await store.default_account()
    ns = await store.create_namespace(acct, "expiring")
    await store.put(ns.id, "lasting", Entry(b"v"))
    await store.put(ns.id, "brief", Entry(b"vvv", expiration=NOW + 10))
    assert await store.namespace_stats(ns.id, now=NOW) == NamespaceStats(2, 8 + 8)
    # Expired, not yet purged: not counted (it is not a live key)...
    assert await store.namespace_stats(ns.id, now=NOW + 10) == NamespaceStats(1, 8)
    # ... and purging it changes nothing visible.
    assert await store.purge_expired(NOW + 10) == 1
    assert await store.namespace_stats(ns.id, now=NOW + 10) == NamespaceStats(1, 8)
    # A key that lost its expiration on rewrite is counted again.
    await store.put(ns.id, "brief", Entry(b"vvv", expiration=NOW + 5))
    await store.put(ns.id, "brief", Entry(b"vvv"))
    assert await store.namespace_stats(ns.id, now=NOW + 10) == NamespaceStats(2, 8 + 8)


async def test_stats_of_unknown_and_deleted_namespaces(store: Store) -> None:
    acct = await store.default_account()
    with pytest.raises(NamespaceNotFound):
        await store.namespace_stats("0" * 32, now=NOW)
    ns = await store.create_namespace(acct, "doomed")
    await store.put_many(ns.id, [(f"k{i}", Entry(b"v")) for i in range(5)])
    await store.delete_namespace(acct, ns.id)
    with pytest.raises(NamespaceNotFound):
        await store.namespace_stats(ns.id, now=NOW)
    again = await store.create_namespace(acct, "doomed", ns.id)  # same id, fresh totals
    assert await store.namespace_stats(again.id, now=NOW) == NamespaceStats(0, 0)


def token(token_id: str, account: str, name: str, read_only: bool = False) -> TokenRecord:
    return TokenRecord(token_id, account, "h" + token_id, read_only=read_only, name=name)


async def test_list_and_revoke_tokens(store: Store) -> None:
    acct = await store.default_account()
    await store.ensure_account("b" * 32)
    await store.create_token(token("2" * 32, acct, "ci", read_only=True))
    await store.create_token(token("1" * 32, acct, "admin"))
    await store.create_token(
        TokenRecord("3" * 32, acct, "h3", namespaces=("a" * 32,), name="one namespace")
    )
    await store.create_token(token("4" * 32, "b" * 32, "elsewhere"))
    listed = await store.list_tokens(acct)
    assert [t.name for t in listed] == ["admin", "ci", "one namespace"]
    assert listed[1].read_only and listed[2].namespaces == ("a" * 32,)
    assert [t.id for t in await store.list_tokens("b" * 32)] == ["4" * 32]

    before = await revision(store, differing_from=None)
    revoked = await store.revoke_token("2" * 32)
    assert revoked is not None and revoked.name == "ci" and revoked.revoked
    found = await store.find_token("h" + "2" * 32)
    assert found is not None and found.revoked  # kept, so that it is refused with a 401
    listed = await store.list_tokens(acct)
    assert [(t.name, t.revoked) for t in listed] == [
        ("admin", False),
        ("ci", True),
        ("one namespace", False),
    ]
    assert await store.revoke_token("9" * 32) is None  # no such token
    again = await store.revoke_token("2" * 32)  # revoking twice is harmless
    assert again is not None and again.revoked
    admin = await store.find_token("h" + "1" * 32)
    assert admin is not None and not admin.revoked  # the others stay
    await revision(store, differing_from=before)  # what a token cache watches


async def revision(store: Store, differing_from: int | None) -> int:
    """`store.token_revision()` once it is known and differs from `differing_from` (SQLite
    re-reads it every 5 ms; PostgreSQL's comes by notification once its listener is up)."""
    deadline = asyncio.get_running_loop().time() + 5.0
    while True:
        current = store.token_revision()
        if current is not None and current != differing_from:
            return current
        assert asyncio.get_running_loop().time() < deadline, "the token revision did not change"
        await asyncio.sleep(0.002)
