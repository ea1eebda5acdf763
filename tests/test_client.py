"""The handle: opening each kind of target, namespaces, lifetime, the expiry sweeper."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import edgekv
from edgekv import Client, KVError
from tests.conftest import FakeClock


async def test_namespace_management(kv: Client) -> None:
    todo = await kv.create_namespace("My tasks")
    assert len(todo.id) == 32 and all(c in "0123456789abcdef" for c in todo.id)
    assert todo.title == "My tasks"
    other = await kv.create_namespace("Other")
    assert [(n.id, n.title) for n in await kv.list_namespaces()] == [
        (todo.id, "My tasks"),
        (other.id, "Other"),
    ]
    renamed = await kv.rename_namespace(todo.id, "Tasks")
    assert renamed.to_dict() == {"id": todo.id, "title": "Tasks"}
    assert await kv.get_namespace(todo.id) == renamed
    await kv.delete_namespace(other.id)
    assert await kv.get_namespace(other.id) is None
    with pytest.raises(KVError) as info:
        await kv.delete_namespace(other.id)
    assert info.value.status == 404


async def test_titles_unique_and_bounded(kv: Client) -> None:
    await kv.create_namespace("dup")
    with pytest.raises(KVError) as info:
        await kv.create_namespace("dup")
    assert info.value.status == 400
    assert str(info.value) == (
        "KV CREATE_NAMESPACE failed: 400 A namespace with this account ID and title already exists"
    )
    await kv.create_namespace("t" * 512)
    for bad in ("", "   ", "t" * 513, 5):
        with pytest.raises(KVError) as info:
            await kv.create_namespace(bad)  # type: ignore[arg-type]
        assert info.value.status == 400


async def test_namespace_handle_is_lazy_and_shared(kv: Client) -> None:
    created = await kv.create_namespace("x")
    await created.put("k", "v")
    same = kv.namespace(created.id)  # no I/O
    assert await same.get("k") == "v"


async def test_open_in_memory_with_async_with() -> None:
    async with edgekv.open() as kv:
        ns = await kv.create_namespace("scratch")
        await ns.put("k", "v")
        assert await ns.get("k") == "v"


async def test_open_path_creates_directory_and_persists(tmp_path: Path) -> None:
    data = tmp_path / "deep" / "data"
    async with edgekv.open(data) as kv:
        ns = await kv.create_namespace("persisted")
        await ns.put("k", "v", metadata={"m": 1}, expiration_ttl=3600)
        account = kv.account_id
    assert data.is_dir()
    async with edgekv.open(str(data)) as kv:
        assert kv.account_id == account  # the default account is the same one
        assert [n.title for n in await kv.list_namespaces()] == ["persisted"]
        result = await kv.namespace(ns.id).get_with_metadata("k")
        assert (result.value, result.metadata) == ("v", {"m": 1})


async def test_first_operation_opens_lazily(tmp_path: Path) -> None:
    kv = edgekv.open(tmp_path / "lazy")
    ns = await kv.create_namespace("n")  # no `async with`: opened on first use
    await ns.put("k", "v")
    assert await kv.namespace(ns.id).get("k") == "v"
    await kv.aclose()
    await kv.aclose()  # idempotent


async def test_concurrent_first_use_opens_once(tmp_path: Path) -> None:
    kv = edgekv.open(tmp_path / "once")
    results = await asyncio.gather(*(kv.list_namespaces() for _ in range(10)))
    assert results == [[]] * 10
    await kv.aclose()


async def test_explicit_account(tmp_path: Path) -> None:
    async with edgekv.open(tmp_path / "acct", account_id="a" * 32) as kv:
        await kv.create_namespace("mine")
    async with edgekv.open(tmp_path / "acct", account_id="b" * 32) as kv:
        assert await kv.list_namespaces() == []


async def test_remote_needs_credentials() -> None:
    kv = edgekv.open("http://127.0.0.1:9")
    with pytest.raises(KVError) as info:
        await kv.list_namespaces()
    assert "token" in str(info.value)


async def test_sweeper_deletes_expired_entries_in_background(tmp_path: Path) -> None:
    clock = FakeClock()
    kv = Client(tmp_path / "sweep", clock=clock, sweep_interval=0.01)
    async with kv:
        ns = await kv.create_namespace("n")
        await ns.put_many([(f"k{i}", "v") for i in range(1500)])
        await ns.put_many(
            [{"key": f"t{i}", "value": "v", "expiration_ttl": 60} for i in range(1500)]
        )
        clock.advance(60)
        # Reads hide them at once; the sweeper removes the rows soon after.
        assert len((await ns.list(prefix="t")).keys) == 0
        store = kv.store
        for _ in range(200):
            left = await store.list_keys(ns.id, prefix="t", after=None, limit=10, now=0)
            if not left:
                break
            await asyncio.sleep(0.02)
        assert left == []
        assert len((await ns.list(prefix="k")).keys) == 1000
