"""Versions, conditional writes and the change feed of the `Store` protocol, on every engine
(versions-and-changes.md): the same checks against memory, a real SQLite file and a real
PostgreSQL database."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edgekv._exceptions import HistoryGone, NamespaceNotFound, PreconditionFailed, SinceAhead
from edgekv._models import Change
from edgekv._types import Condition, Entry, Store, Written
from tests.conftest import ENGINES

NOW = 1_700_000_000
VERSION = re.compile(r"[\x21\x23-\x7e]{1,64}")


async def new_ns(store: Store, title: str = "feed", namespace_id: str | None = None) -> str:
    acct = await store.default_account()
    return (await store.create_namespace(acct, title, namespace_id)).id


async def history_store(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    """An engine keeping only 5 changes per namespace."""
    if engine == "memory":
        from edgekv.store.memory import MemoryStore

        return MemoryStore(feed_history=5)
    if engine == "sqlite":
        from edgekv.store.sqlite import SQLiteStore

        return await SQLiteStore.open(tmp_path / "small", feed_history=5)
    from edgekv.store.postgres import PostgresStore
    from tests import pgcluster

    dsn = request.getfixturevalue("postgres_dsn")
    return await PostgresStore.open(await pgcluster.fresh_database(dsn), feed_history=5)


@pytest.fixture(params=ENGINES)
async def small(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with contextlib.aclosing(await history_store(request.param, tmp_path, request)) as s:
        yield s


def ops(changes: list[Change]) -> list[tuple[str, str]]:
    return [(c.op, c.key) for c in changes]


# -- versions --------------------------------------------------------------------------------
async def test_every_write_makes_a_new_version(store: Store) -> None:
    ns = await new_ns(store)
    seen: list[str] = []
    for _ in range(3):  # the same bytes each time: still a new version
        written = await store.put(ns, "k", Entry(b"same"))
        entry = await store.get(ns, "k", now=NOW)
        assert entry is not None and entry.version == written.version
        assert VERSION.fullmatch(written.version)
        seen.append(written.version)
    await store.delete(ns, "k")
    assert await store.get(ns, "k", now=NOW) is None
    seen.append((await store.put(ns, "k", Entry(b"same"))).version)  # re-created
    assert len(set(seen)) == 4
    many = await store.get_many(ns, ["k", "missing"], now=NOW)
    assert many["k"].version == seen[-1] and "missing" not in many


async def test_versions_never_repeat_across_namespace_recreation(store: Store) -> None:
    ns = await new_ns(store, namespace_id="06779da6940b431db6e566b4846d64db")
    old = {(await store.put(ns, "k", Entry(b"v"))).version for _ in range(3)}
    acct = await store.default_account()
    await store.delete_namespace(acct, ns)
    again = await new_ns(store, "again", namespace_id=ns)
    new = {(await store.put(again, "k", Entry(b"v"))).version for _ in range(3)}
    assert not old & new
    # The old feed's cursors are older than the new feed's start: a 410, never a silent gap.
    with pytest.raises(HistoryGone):
        await store.changes(again, since=0)
    page = await store.changes(again, since=None)
    assert page.changes == [] and page.cursor == page.head


# -- conditional writes ----------------------------------------------------------------------
async def test_if_match_and_if_none_match(store: Store) -> None:
    ns = await new_ns(store)
    first = await store.put(ns, "k", Entry(b"1"), condition=Condition(None, NOW))
    with pytest.raises(PreconditionFailed) as failed:
        await store.put(ns, "k", Entry(b"x"), condition=Condition(None, NOW))
    assert failed.value.version == first.version and failed.value.status == 412
    second = await store.put(ns, "k", Entry(b"2"), condition=Condition(first.version, NOW))
    with pytest.raises(PreconditionFailed) as failed:
        await store.put(ns, "k", Entry(b"x"), condition=Condition(first.version, NOW))
    assert failed.value.version == second.version
    entry = await store.get(ns, "k", now=NOW)
    assert entry is not None and entry.value == b"2"  # nothing written by the failures
    with pytest.raises(PreconditionFailed) as failed:
        await store.put(ns, "nope", Entry(b"x"), condition=Condition(first.version, NOW))
    assert failed.value.version is None
    head = await store.head(ns)
    with pytest.raises(PreconditionFailed):
        await store.delete(ns, "k", condition=Condition(first.version, NOW), now=NOW)
    with pytest.raises(PreconditionFailed) as failed:
        await store.delete(ns, "nope", condition=Condition("1", NOW), now=NOW)
    assert failed.value.version is None
    assert await store.head(ns) == head  # failed conditions are not changes
    gone = await store.delete(ns, "k", condition=Condition(second.version, NOW), now=NOW)
    assert gone is not None and await store.get(ns, "k", now=NOW) is None
    with pytest.raises(NamespaceNotFound):
        await store.put("0" * 32, "k", Entry(b"x"), condition=Condition("1", NOW))
    with pytest.raises(NamespaceNotFound):
        await store.put("0" * 32, "k", Entry(b"x"), condition=Condition(None, NOW))


async def test_an_expired_key_does_not_exist_for_conditions(store: Store) -> None:
    ns = await new_ns(store)
    written = await store.put(ns, "k", Entry(b"1", NOW + 10))
    with pytest.raises(PreconditionFailed) as failed:
        await store.put(ns, "k", Entry(b"2"), condition=Condition(written.version, NOW + 10))
    assert failed.value.version is None
    await store.put(ns, "k", Entry(b"2"), condition=Condition(None, NOW + 10))
    entry = await store.get(ns, "k", now=NOW + 10)
    assert entry is not None and entry.value == b"2"


async def test_concurrent_writes_against_one_version_exactly_one_wins(store: Store) -> None:
    ns = await new_ns(store)
    base = await store.put(ns, "k", Entry(b"0"))

    async def attempt(i: int) -> Written | None:
        try:
            return await store.put(
                ns, "k", Entry(b"%d" % i), condition=Condition(base.version, NOW)
            )
        except PreconditionFailed:
            return None

    results = await asyncio.gather(*(attempt(i) for i in range(20)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    entry = await store.get(ns, "k", now=NOW)
    assert entry is not None and entry.version == winners[0].version

    async def create(i: int) -> bool:
        try:
            await store.put(ns, "new", Entry(b"%d" % i), condition=Condition(None, NOW))
        except PreconditionFailed:
            return False
        return True

    assert sum(await asyncio.gather(*(create(i) for i in range(20)))) == 1


# -- the change feed -------------------------------------------------------------------------
async def test_changes_in_commit_order_with_their_fields(store: Store) -> None:
    ns = await new_ns(store)
    start = await store.changes(ns, since=None)
    assert start.changes == [] and start.cursor == start.head
    since = start.cursor
    put = await store.put(ns, "a", Entry(b"1", NOW + 100, '{"m":1}'))
    await store.put_many(ns, [("b", Entry(b"2")), ("c", Entry(b"3")), ("b", Entry(b"4"))])
    assert await store.delete(ns, "missing", now=NOW) is None  # not a change
    await store.delete_many(ns, ["c", "nothing", "c", "a"], now=NOW)
    page = await store.changes(ns, since=since)
    assert ops(page.changes) == [
        ("put", "a"),
        ("put", "b"),
        ("put", "c"),
        ("put", "b"),
        ("delete", "c"),
        ("delete", "a"),
    ]
    seqs = [c.seq for c in page.changes]
    assert seqs == list(range(since + 1, since + 7)) and page.cursor == seqs[-1]
    first = page.changes[0]
    assert first.seq == put.seq and first.version == put.version
    assert first.expiration == NOW + 100 and first.metadata == {"m": 1}
    assert first.to_dict() == {
        "seq": put.seq,
        "key": "a",
        "op": "put",
        "version": put.version,
        "expiration": NOW + 100,
        "metadata": {"m": 1},
    }
    assert page.changes[4].to_dict() == {"seq": seqs[4], "key": "c", "op": "delete"}
    # The entry's version is its last write's (the later duplicate in the bulk).
    entry = await store.get(ns, "b", now=NOW)
    assert entry is not None and entry.version == page.changes[3].version
    # Paging with the cursor: every change once.
    got: list[Change] = []
    cursor = since
    while True:
        part = await store.changes(ns, since=cursor, limit=4)
        if not part.changes:
            assert part.cursor == cursor
            break
        got += part.changes
        cursor = part.cursor
    assert got == page.changes


async def test_expiry_is_not_a_change(store: Store) -> None:
    ns = await new_ns(store)
    await store.put(ns, "short", Entry(b"v", NOW + 5))
    await store.put(ns, "short2", Entry(b"v", NOW + 5))
    head = await store.head(ns)
    assert await store.purge_expired(NOW + 5) >= 1
    assert await store.delete(ns, "short2", now=NOW + 5) is None  # expired: nothing to delete
    assert await store.head(ns) == head


async def test_a_bulk_delete_logs_only_the_live_keys_it_deleted(store: Store) -> None:
    ns = await new_ns(store)
    await store.put_many(ns, [("gone", Entry(b"v", NOW + 5)), ("live", Entry(b"v"))])
    head = await store.head(ns)
    await store.delete_many(ns, ["live", "gone", "never"], now=NOW + 5)  # "gone" expired
    page = await store.changes(ns, since=head)
    assert ops(page.changes) == [("delete", "live")] and page.cursor == head + 1
    assert await store.get_many(ns, ["gone", "live"], now=NOW) == {}  # both rows deleted


async def test_prefix_filters_and_cursor_never_falls_behind(store: Store) -> None:
    ns = await new_ns(store)
    since = await store.head(ns)
    await store.put_many(ns, [("user/1", Entry(b"1")), ("cfg/a", Entry(b"x"))])
    await store.put(ns, "user/2", Entry(b"2"))
    page = await store.changes(ns, since=since, prefix="user/")
    assert ops(page.changes) == [("put", "user/1"), ("put", "user/2")]
    assert page.cursor == page.changes[-1].seq
    quiet = await store.changes(ns, since=since, prefix="nobody/")
    assert quiet.changes == [] and quiet.cursor == await store.head(ns)  # all examined
    one = await store.changes(ns, since=since, prefix="user/", limit=1)
    assert ops(one.changes) == [("put", "user/1")] and one.cursor == one.changes[0].seq


async def test_since_outside_the_feed(store: Store) -> None:
    ns = await new_ns(store)
    await store.put(ns, "k", Entry(b"v"))
    head = await store.head(ns)
    with pytest.raises(SinceAhead):
        await store.changes(ns, since=head + 1)
    with pytest.raises(NamespaceNotFound):
        await store.changes("0" * 32, since=0)
    with pytest.raises(NamespaceNotFound):
        await store.head("0" * 32)


async def test_history_is_trimmed_and_older_since_is_gone(small: Store) -> None:
    ns = await new_ns(small)
    since = await small.head(ns)
    for i in range(6):
        await small.put(ns, f"k{i}", Entry(b"v"))
    # At least the newest 5 are kept, whatever the trimmer did meanwhile.
    kept = await small.changes(ns, since=since + 1)
    assert [c.key for c in kept.changes] == ["k1", "k2", "k3", "k4", "k5"]
    for i in range(6, 30):
        await small.put(ns, f"k{i}", Entry(b"v"))
    # More than 2N changes after `since`: certainly gone, and said so.
    with pytest.raises(HistoryGone) as gone:
        await small.changes(ns, since=since + 1)
    assert gone.value.status == 410 and gone.value.code == 10410
    assert re.fullmatch(r"history before \d+ is no longer kept", gone.value.detail)
    oldest = gone.value.oldest
    for _ in range(50):  # the oldest kept answers (the background trimmer may move on meanwhile)
        try:
            page = await small.changes(ns, since=oldest - 1)
            break
        except HistoryGone as again:
            assert again.oldest > oldest  # it only ever moves forward
            oldest = again.oldest
    else:
        pytest.fail("the oldest kept change never answered")
    assert page.changes and page.changes[0].seq == oldest
    assert [c.key for c in (await small.changes(ns, since=since + 25)).changes] == [
        "k25",
        "k26",
        "k27",
        "k28",
        "k29",
    ]
    # The trimmer works in the background: it brings the history back to N.
    for _ in range(100):
        await asyncio.sleep(0.02)
        try:
            await small.changes(ns, since=since + 20)
        except HistoryGone:
            break
    else:
        pytest.fail("history was never trimmed")


async def test_long_poll_wakes_on_a_commit_and_times_out(store: Store) -> None:
    ns = await new_ns(store)
    since = await store.head(ns)
    started = time.monotonic()
    empty = await store.changes(ns, since=since, wait=0.3)
    assert empty.changes == [] and empty.cursor == since
    assert time.monotonic() - started >= 0.3  # not earlier

    poll = asyncio.ensure_future(store.changes(ns, since=since, wait=10))
    await asyncio.sleep(0.1)
    assert not poll.done()
    started = time.monotonic()
    await store.put(ns, "k", Entry(b"v"))
    page = await asyncio.wait_for(poll, 5)
    assert time.monotonic() - started < 1.0
    assert ops(page.changes) == [("put", "k")]


async def test_a_non_matching_change_does_not_end_the_wait(store: Store) -> None:
    ns = await new_ns(store)
    since = await store.head(ns)
    poll = asyncio.ensure_future(store.changes(ns, since=since, prefix="user/", wait=10))
    await asyncio.sleep(0.05)
    await store.put(ns, "other", Entry(b"v"))
    await asyncio.sleep(0.2)
    assert not poll.done()
    await store.put(ns, "user/1", Entry(b"v"))
    page = await asyncio.wait_for(poll, 5)
    assert ops(page.changes) == [("put", "user/1")]


async def test_a_cancelled_poll_leaves_nothing_behind(store: Store) -> None:
    ns = await new_ns(store)
    polls = [
        asyncio.ensure_future(store.changes(ns, since=await store.head(ns), wait=30))
        for _ in range(50)
    ]
    await asyncio.sleep(0.1)
    waiters = store._waiters  # type: ignore[attr-defined]
    assert len(waiters) == 50
    for poll in polls:
        poll.cancel()
    await asyncio.gather(*polls, return_exceptions=True)
    assert len(waiters) == 0 and waiters.waited() == []


async def test_deleting_the_namespace_ends_its_feed(store: Store) -> None:
    ns = await new_ns(store)
    poll = asyncio.ensure_future(store.changes(ns, since=await store.head(ns), wait=10))
    await asyncio.sleep(0.05)
    await store.delete_namespace(await store.default_account(), ns)
    with pytest.raises(NamespaceNotFound):
        await asyncio.wait_for(poll, 5)
    with pytest.raises(NamespaceNotFound):
        await store.changes(ns, since=0)
