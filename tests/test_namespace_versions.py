"""The binding's versions, conditional writes and change feed (versions-and-changes.md), on
every engine; tests/edge/test_binding_suite.py runs them again through a remote binding and a
location cache against a real central server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

import edgekv
from edgekv import Change, KVConflict, KVError, KVNamespace, KVTypeError


async def test_version_on_results(ns: KVNamespace) -> None:
    assert (await ns.get_with_metadata("missing")).version is None
    assert "version" not in (await ns.get_with_metadata("missing")).to_dict()
    await ns.put("k", "v")
    first = (await ns.get_with_metadata("k")).version
    assert first is not None
    await ns.put("k", "v")
    second = (await ns.get_with_metadata("k")).version
    assert second is not None and second != first
    bulk = await ns.get_with_metadata(["k", "missing"])
    got = bulk["k"]
    assert got is not None and got.version == second and bulk["missing"] is None
    assert await ns.put("other", "v") is None  # put still returns None


async def test_compare_and_swap(ns: KVNamespace) -> None:
    await ns.put("n", "0", if_none_match="*")
    with pytest.raises(KVConflict) as conflict:
        await ns.put("n", "1", if_none_match="*")
    current = (await ns.get_with_metadata("n")).version
    assert conflict.value.version == current
    assert conflict.value.status == 412 and isinstance(conflict.value, KVError)
    assert str(conflict.value) == "KV PUT failed: 412 Precondition failed."
    await ns.put("n", "1", if_match=current)
    assert await ns.get("n") == "1"
    with pytest.raises(KVConflict):
        await ns.put("n", "2", if_match=current)
    assert await ns.get("n") == "1"


async def test_conditional_delete(ns: KVNamespace) -> None:
    with pytest.raises(KVConflict) as conflict:
        await ns.delete("missing", if_match="1")
    assert conflict.value.version is None
    assert str(conflict.value) == "KV DELETE failed: 412 Precondition failed."
    await ns.put("k", "v")
    version = (await ns.get_with_metadata("k")).version
    await ns.put("k", "w")
    with pytest.raises(KVConflict):
        await ns.delete("k", if_match=version)
    assert await ns.get("k") == "w"
    await ns.delete("k", if_match=(await ns.get_with_metadata("k")).version)
    assert await ns.get("k") is None


async def test_bad_conditions_are_type_errors(ns: KVNamespace) -> None:
    with pytest.raises(KVTypeError):
        await ns.put("k", "v", if_match="1", if_none_match="*")
    with pytest.raises(KVTypeError):
        await ns.put("k", "v", if_none_match="1")
    with pytest.raises(KVTypeError):
        await ns.put("k", "v", if_match=1)  # type: ignore[arg-type]
    assert await ns.get("k") is None  # nothing written


async def test_counter_with_concurrent_increments(ns: KVNamespace) -> None:
    await ns.put("counter", "0")

    async def increment() -> int:
        conflicts = 0
        while True:
            current = await ns.get_with_metadata("counter")
            try:
                await ns.put("counter", str(int(current.value) + 1), if_match=current.version)
                return conflicts
            except KVConflict:
                conflicts += 1

    await asyncio.gather(*(increment() for _ in range(8)))
    assert await ns.get("counter") == "8"


async def _take(changes: AsyncIterator[Change], n: int) -> list[Change]:
    out: list[Change] = []
    async with contextlib.aclosing(changes):  # type: ignore[type-var]
        async for change in changes:
            out.append(change)
            if len(out) == n:
                break
    return out


async def test_changes_follow_new_writes(ns: KVNamespace) -> None:
    follower = asyncio.ensure_future(_take(ns.changes(), 3))
    await asyncio.sleep(0.2)  # it starts at the head: earlier writes are not in it
    await ns.put("a", "1", metadata={"m": 1})
    await ns.put_many([("b", "2"), ("c", "3")])
    got = await asyncio.wait_for(follower, 10)
    assert [(c.op, c.key) for c in got] == [("put", "a"), ("put", "b"), ("put", "c")]
    assert got[0].metadata == {"m": 1}
    assert got[0].version == (await ns.get_with_metadata("a")).version
    assert isinstance(got[0], edgekv.Change)
    # Resuming from a change's seq sees exactly what came after it.
    await ns.delete("a")
    again = await asyncio.wait_for(_take(ns.changes(since=got[1].seq), 2), 10)
    assert [(c.op, c.key) for c in again] == [("put", "c"), ("delete", "a")]
    prefixed = await asyncio.wait_for(_take(ns.changes(since=got[0].seq - 1, prefix="c"), 1), 10)
    assert [c.key for c in prefixed] == ["c"]


async def test_changes_bad_arguments(ns: KVNamespace) -> None:
    with pytest.raises(KVTypeError):
        await _take(ns.changes(since=-1), 1)
    with pytest.raises(KVTypeError):
        await _take(ns.changes(since="5"), 1)  # type: ignore[arg-type]
    with pytest.raises(KVTypeError):
        await _take(ns.changes(prefix=5), 1)  # type: ignore[arg-type]


async def test_deleting_the_namespace_ends_its_feed(kv: edgekv.Client) -> None:
    ns = await kv.create_namespace("doomed")
    follower = asyncio.ensure_future(_take(ns.changes(), 1))
    await asyncio.sleep(0.2)
    await kv.delete_namespace(ns.id)
    with pytest.raises(KVError) as gone:
        await asyncio.wait_for(follower, 10)
    assert gone.value.status == 404
