"""The `Store` protocol, checked the same way on every engine."""

from __future__ import annotations

import asyncio

import pytest

from edgekv._exceptions import NamespaceIdTaken, NamespaceNotFound, NamespaceTitleTaken
from edgekv._types import Entry, KeyInfo, Store, TokenRecord

NOW = 1_700_000_000


async def test_default_account_is_stable(store: Store) -> None:
    first = await store.default_account()
    assert len(first) == 32 and first == first.lower()
    assert await store.default_account() == first
    assert await store.account_exists(first)
    assert not await store.account_exists("f" * 32)


async def test_namespace_lifecycle(store: Store) -> None:
    acct = await store.default_account()
    ns = await store.create_namespace(acct, "tasks")
    assert len(ns.id) == 32 and ns.title == "tasks" and ns.account_id == acct
    with pytest.raises(NamespaceTitleTaken):
        await store.create_namespace(acct, "tasks")
    other = await store.create_namespace(acct, "other")
    assert [n.id for n in await store.list_namespaces(acct)] == [ns.id, other.id]
    with pytest.raises(NamespaceTitleTaken):
        await store.rename_namespace(acct, other.id, "tasks")
    renamed = await store.rename_namespace(acct, ns.id, "My tasks")
    assert renamed.title == "My tasks"
    assert await store.get_namespace(acct, ns.id) == renamed
    await store.put(ns.id, "k", Entry(b"v"))
    await store.delete_namespace(acct, ns.id)
    assert await store.get_namespace(acct, ns.id) is None
    with pytest.raises(NamespaceNotFound):
        await store.get(ns.id, "k", now=NOW)
    with pytest.raises(NamespaceNotFound):
        await store.delete_namespace(acct, ns.id)


async def test_create_namespace_with_given_id(store: Store) -> None:
    acct = await store.default_account()
    ns = await store.create_namespace(acct, "bound", "06779da6940b431db6e566b4846d64db")
    assert ns.id == "06779da6940b431db6e566b4846d64db"
    await store.put(ns.id, "k", Entry(b"v"))
    with pytest.raises(NamespaceIdTaken) as caught:
        await store.create_namespace(acct, "another title", ns.id)
    assert caught.value.detail == "A namespace with this ID already exists"
    assert isinstance(caught.value, NamespaceTitleTaken)  # same status and code (10014)
    other = "c" * 32
    await store.ensure_account(other)
    with pytest.raises(NamespaceIdTaken):  # ids are unique across accounts
        await store.create_namespace(other, "bound", ns.id)
    assert await store.get(ns.id, "k", now=NOW) == Entry(b"v")  # nothing lost


async def test_a_jurisdiction_is_kept_listed_and_survives_a_rename(store: Store) -> None:
    acct = await store.default_account()
    plain = await store.create_namespace(acct, "plain")
    eu = await store.create_namespace(acct, "in the eu", jurisdiction="eu")
    chosen = await store.create_namespace(acct, "us", "a" * 32, jurisdiction="fedramp")
    assert (plain.jurisdiction, eu.jurisdiction, chosen.jurisdiction) == (None, "eu", "fedramp")
    listed = await store.list_namespaces(acct)
    assert [(n.title, n.jurisdiction) for n in listed] == [
        ("plain", None),
        ("in the eu", "eu"),
        ("us", "fedramp"),
    ]
    renamed = await store.rename_namespace(acct, eu.id, "still in the eu")
    assert renamed.jurisdiction == "eu"
    assert await store.get_namespace(acct, eu.id) == renamed


async def test_namespaces_are_per_account(store: Store) -> None:
    a = await store.default_account()
    b = "b" * 32
    await store.ensure_account(b)
    ns = await store.create_namespace(a, "same")
    await store.create_namespace(b, "same")  # titles are unique per account only
    assert await store.get_namespace(b, ns.id) is None
    with pytest.raises(NamespaceNotFound):
        await store.rename_namespace(b, ns.id, "x")
    with pytest.raises(NamespaceNotFound):
        await store.delete_namespace(b, ns.id)


async def test_unknown_namespace_on_every_entry_op(store: Store) -> None:
    missing = "0" * 32
    for call in (
        store.get(missing, "k", now=NOW),
        store.get_many(missing, ["k"], now=NOW),
        store.put(missing, "k", Entry(b"v")),
        store.put_many(missing, [("k", Entry(b"v"))]),
        store.delete(missing, "k"),
        store.delete_many(missing, ["k"]),
        store.list_keys(missing, prefix="", after=None, limit=10, now=NOW),
    ):
        with pytest.raises(NamespaceNotFound):
            await call


async def test_put_replaces_whole_entry_and_expiration_filters(store: Store) -> None:
    ns = (await store.create_namespace(await store.default_account(), "n")).id
    await store.put(ns, "k", Entry(b"v1", NOW + 100, '{"a":1}'))
    assert await store.get(ns, "k", now=NOW) == Entry(b"v1", NOW + 100, '{"a":1}')
    assert await store.get(ns, "k", now=NOW + 99) is not None
    assert await store.get(ns, "k", now=NOW + 100) is None  # gone at its second
    await store.put(ns, "k", Entry(b""))
    assert await store.get(ns, "k", now=NOW + 200) == Entry(b"", None, None)
    await store.delete(ns, "k")
    await store.delete(ns, "k")  # deleting a missing key is fine
    assert await store.get(ns, "k", now=NOW) is None


async def test_bytearray_value_is_copied(store: Store) -> None:
    ns = (await store.create_namespace(await store.default_account(), "n")).id
    buf = bytearray(b"abc")
    await store.put(ns, "k", Entry(bytes(buf)))
    await store.put_many(ns, [("m", Entry(memoryview(buf).tobytes()))])
    buf[0] = ord("z")
    got = await store.get(ns, "k", now=NOW)
    assert got is not None and got.value == b"abc"


async def test_list_orders_by_utf8_bytes_with_literal_prefix(store: Store) -> None:
    ns = (await store.create_namespace(await store.default_account(), "n")).id
    keys = ["a", "B", "\uffff", "\U00010000", "a%", "a_b", "a\\", "ab", "é", "a\x00"]
    await store.put_many(ns, [(k, Entry(b"x")) for k in keys])
    listed = await store.list_keys(ns, prefix="", after=None, limit=100, now=NOW)
    assert [k.name for k in listed] == sorted(keys, key=lambda k: k.encode())
    pct = await store.list_keys(ns, prefix="a%", after=None, limit=100, now=NOW)
    assert [k.name for k in pct] == ["a%"]
    under = await store.list_keys(ns, prefix="a_", after=None, limit=100, now=NOW)
    assert [k.name for k in under] == ["a_b"]
    page = await store.list_keys(ns, prefix="a", after="a%", limit=2, now=NOW)
    assert [k.name for k in page] == ["a\\", "a_b"]
    # a cursor before the prefix range starts at the prefix
    page = await store.list_keys(ns, prefix="a", after="B", limit=1, now=NOW)
    assert [k.name for k in page] == ["a"]


async def test_list_hides_expired_and_carries_metadata(store: Store) -> None:
    ns = (await store.create_namespace(await store.default_account(), "n")).id
    await store.put(ns, "a", Entry(b"1", NOW + 10, '{"m":true}'))
    await store.put(ns, "b", Entry(b"2", NOW + 5))
    await store.put(ns, "c", Entry(b"3"))
    listed = await store.list_keys(ns, prefix="", after=None, limit=10, now=NOW + 5)
    assert listed == [KeyInfo("a", NOW + 10, '{"m":true}'), KeyInfo("c")]


async def test_get_many_and_delete_many(store: Store) -> None:
    ns = (await store.create_namespace(await store.default_account(), "n")).id
    await store.put_many(ns, [("a", Entry(b"1")), ("b", Entry(b"2", NOW + 1)), ("a", Entry(b"3"))])
    got = await store.get_many(ns, ["a", "b", "zz", "a"], now=NOW + 1)
    assert got == {"a": Entry(b"3")}
    await store.delete_many(ns, ["a", "nope"])
    assert await store.get_many(ns, ["a", "b"], now=NOW) == {"b": Entry(b"2", NOW + 1)}


async def test_purge_expired_removes_rows(store: Store) -> None:
    ns = (await store.create_namespace(await store.default_account(), "n")).id
    await store.put_many(ns, [(f"k{i}", Entry(b"v", NOW + i)) for i in range(10)])
    await store.put(ns, "keep", Entry(b"v"))
    assert await store.purge_expired(NOW + 5, limit=3) == 3
    assert await store.purge_expired(NOW + 5) == 3  # k0..k5 expire at or before NOW + 5
    assert await store.purge_expired(NOW + 5) == 0
    left = await store.list_keys(ns, prefix="", after=None, limit=100, now=0)
    assert [k.name for k in left] == ["k6", "k7", "k8", "k9", "keep"]


async def test_tokens(store: Store) -> None:
    acct = await store.default_account()
    rec = TokenRecord("t" * 32, acct, "ab" * 32, read_only=True, namespaces=("n" * 32,), name="ci")
    await store.create_token(rec)
    assert await store.find_token("ab" * 32) == rec
    assert await store.find_token("cd" * 32) is None


async def test_concurrent_puts_last_write_wins_per_key(store: Store) -> None:
    ns = (await store.create_namespace(await store.default_account(), "n")).id
    await asyncio.gather(*(store.put(ns, f"k{i % 8}", Entry(str(i).encode())) for i in range(64)))
    got = await store.get_many(ns, [f"k{i}" for i in range(8)], now=NOW)
    assert len(got) == 8
    for i in range(8):
        # the value is one of the written ones for that key, never a mix
        assert int(got[f"k{i}"].value) % 8 == i
