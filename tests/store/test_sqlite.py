"""What only the SQLite engine has: a file that outlives the process, group commit, WAL, crash
safety. Real files in tmp_path and a real killed subprocess, no mocks; every wait is bounded."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edgekv._exceptions import NamespaceNotFound, NamespaceTitleTaken, StoreError
from edgekv._types import Entry, KeyInfo, TokenRecord, Written
from edgekv.store import sqlite_schema as schema
from edgekv.store.sqlite import FILENAME, SCHEMA_VERSION, SQLiteStore

pytestmark = pytest.mark.skipif(
    "sqlite" not in os.environ.get("EDGEKV_TEST_ENGINES", "sqlite"),
    reason="sqlite engine not selected (EDGEKV_TEST_ENGINES)",
)

NOW = 1_700_000_000


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = await SQLiteStore.open(tmp_path / "kv")
    try:
        yield s
    finally:
        await s.aclose()


async def new_ns(store: SQLiteStore, title: str = "n") -> str:
    return (await store.create_namespace(await store.default_account(), title)).id


def raw(directory: Path) -> sqlite3.Connection:
    """A plain connection of our own, to look at the file behind the store's back."""
    return sqlite3.connect(directory / FILENAME, isolation_level=None)


async def test_everything_persists_across_reopen(tmp_path: Path) -> None:
    directory = tmp_path / "nested" / "kv"  # open() creates missing parents
    store = await SQLiteStore.open(directory)
    acct = await store.default_account()
    await store.ensure_account("b" * 32, "second")
    first = await store.create_namespace(acct, "first")
    gone = await store.create_namespace(acct, "gone")
    second = await store.create_namespace(acct, "second", "06779da6940b431db6e566b4846d64db")
    await store.put(first.id, "k", Entry(b"v", NOW + 100, '{"a":1}'))
    await store.put_many(second.id, [("x", Entry(b"1")), ("y", Entry(b""))])
    await store.delete_namespace(acct, gone.id)
    token = TokenRecord("t" * 32, acct, "ab" * 32, read_only=True, namespaces=(first.id,))
    await store.create_token(token)
    await store.create_token(TokenRecord("u" * 32, acct, "cd" * 32, name="all"))
    await store.aclose()

    store = await SQLiteStore.open(directory)
    try:
        assert await store.default_account() == acct
        assert await store.account_exists("b" * 32)
        assert await store.list_namespaces(acct) == [first, second]
        assert await store.get(first.id, "k", now=NOW) == Entry(b"v", NOW + 100, '{"a":1}')
        assert await store.get_many(second.id, ["x", "y"], now=NOW) == {
            "x": Entry(b"1"),
            "y": Entry(b""),
        }
        assert await store.find_token("ab" * 32) == token
        assert await store.find_token("cd" * 32) == TokenRecord(
            "u" * 32, acct, "cd" * 32, name="all"
        )
        with pytest.raises(NamespaceNotFound):
            await store.get(gone.id, "k", now=NOW)
    finally:
        await store.aclose()


async def test_wal_mode_and_schema_version(store: SQLiteStore, tmp_path: Path) -> None:
    await store.put(await new_ns(store), "k", Entry(b"v"))
    # the writer fsyncs the WAL at every commit (2 = FULL)
    assert await store._write(lambda c: c.execute("PRAGMA synchronous").fetchone()[0]) == 2
    con = raw(tmp_path / "kv")
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 1
        assert (tmp_path / "kv" / f"{FILENAME}-wal").exists()
        # keys are BLOBs: memcmp order whatever the collation
        assert con.execute("SELECT typeof(key) FROM entries").fetchone()[0] == "blob"
    finally:
        con.close()


async def test_a_round_1_file_opens_with_its_data(tmp_path: Path) -> None:
    # Schema version 1 as round 1 wrote it, with a namespace and an entry.
    con = raw(tmp_path)
    for statement in schema.MIGRATIONS[0].split(";"):
        con.execute(statement)
    con.execute("PRAGMA user_version = 1")
    con.execute("INSERT INTO accounts (id) VALUES (?)", ("a" * 32,))
    con.execute(
        "INSERT INTO namespaces (id, account_id, title) VALUES (?, ?, ?)",
        ("b" * 32, "a" * 32, "old"),
    )
    con.execute(
        "INSERT INTO entries (namespace_id, key, value, expiration, metadata)"
        " VALUES (?, ?, ?, ?, ?)",
        ("b" * 32, b"k", b"v", None, '{"m":1}'),
    )
    con.close()
    store = await SQLiteStore.open(tmp_path)
    try:
        (old,) = await store.list_namespaces("a" * 32)
        assert (old.id, old.title, old.jurisdiction) == ("b" * 32, "old", None)
        assert await store.get("b" * 32, "k", now=NOW) == Entry(b"v", None, '{"m":1}')
        eu = await store.create_namespace("a" * 32, "new", jurisdiction="eu")
        assert (await store.get_namespace("a" * 32, eu.id)) == eu
    finally:
        await store.aclose()
    con = raw(tmp_path)
    try:
        assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        con.close()


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path)
    await store.aclose()
    con = raw(tmp_path)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.close()
    with pytest.raises(StoreError, match="newer"):
        await SQLiteStore.open(tmp_path)


async def test_listing_and_purge_use_the_indexes(store: SQLiteStore, tmp_path: Path) -> None:
    con = raw(tmp_path / "kv")
    try:
        for sql, params in (
            (schema.LIST, ("n", b"", b"", 0, 1)),
            (schema.LIST_ALL, ("n", b"", 0, 1)),
        ):
            plan = " ".join(row[3] for row in con.execute(f"EXPLAIN QUERY PLAN {sql}", params))
            assert "USING PRIMARY KEY" in plan and "TEMP B-TREE" not in plan  # a seek, no sort
            # the page's JSON arrays are built in key order: the aggregate reads a co-routine
            assert "CO-ROUTINE" in plan
        purge = con.execute(f"EXPLAIN QUERY PLAN {schema.PURGE}", (0, 1))
        assert "entries_expiration" in " ".join(row[3] for row in purge)
    finally:
        con.close()


async def test_group_commit_is_durable_and_batched(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path)
    try:
        ns = await new_ns(store)
        before = store.commits
        await asyncio.gather(*(store.put(ns, f"k{i:02}", Entry(b"%d" % i)) for i in range(64)))
        assert store.commits - before < 16  # far fewer commits than writes
        # Acknowledged means committed: another connection sees them all before any close.
        con = raw(tmp_path)
        try:
            assert con.execute("SELECT count(*) FROM entries").fetchone()[0] == 64
        finally:
            con.close()
    finally:
        await store.aclose()
    store = await SQLiteStore.open(tmp_path)
    try:
        got = await store.get_many(ns, [f"k{i:02}" for i in range(64)], now=NOW)
        assert {k: e.value for k, e in got.items()} == {f"k{i:02}": b"%d" % i for i in range(64)}
    finally:
        await store.aclose()


async def _hold_writer(store: SQLiteStore) -> tuple[threading.Event, asyncio.Future[None]]:
    """Park the writer thread inside a job, so what is submitted next lands in one batch."""
    started, gate = threading.Event(), threading.Event()

    def park(conn: sqlite3.Connection) -> None:
        started.set()
        gate.wait(10)

    parked = asyncio.ensure_future(store._write(park))
    assert await asyncio.to_thread(started.wait, 10)
    return gate, parked


async def test_failing_ops_do_not_fail_their_batch(store: SQLiteStore) -> None:
    acct = await store.default_account()
    ns = await new_ns(store)
    second = await new_ns(store, "second")
    missing = "0" * 32
    gate, parked = await _hold_writer(store)
    commits = store.commits
    calls = [
        store.rename_namespace(acct, second, "n"),  # UNIQUE fails inside UPDATE
        store.put(ns, "a", Entry(b"1")),
        store.put(missing, "x", Entry(b"x")),
        store.put_many(missing, [("x", Entry(b"x"))]),
        store.create_namespace(acct, "n"),
        store.rename_namespace(acct, missing, "t"),
        store.delete(missing, "x"),
        store.put_many(ns, [("b", Entry(b"2")), ("c", Entry(b"3"))]),
        store.delete_namespace(acct, missing),
        store.create_namespace(acct, "other"),
    ]
    tasks = [asyncio.ensure_future(c) for c in calls]
    await asyncio.sleep(0)  # every task runs up to its enqueue
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    await parked
    assert store.commits - commits == 2  # the parked job, then everything else at once
    kinds = [type(r) for r in results]
    assert kinds[:9] == [
        NamespaceTitleTaken,
        Written,
        NamespaceNotFound,
        NamespaceNotFound,
        NamespaceTitleTaken,
        NamespaceNotFound,
        NamespaceNotFound,
        type(None),
        NamespaceNotFound,
    ]
    assert [n.title for n in await store.list_namespaces(acct)] == ["n", "second", "other"]
    listed = await store.list_keys(ns, prefix="", after=None, limit=10, now=NOW)
    assert listed == [KeyInfo("a"), KeyInfo("b"), KeyInfo("c")]


async def test_an_op_failing_midway_is_rolled_back_alone(store: SQLiteStore) -> None:
    ns = await new_ns(store)

    def half_then_fail(conn: sqlite3.Connection) -> None:
        conn.execute(schema.UPSERT, (ns, b"half", b"x", None, None, None, None, 0))
        raise StoreError("broke after writing")

    def bad_sql(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO no_such_table VALUES (1)")

    gate, parked = await _hold_writer(store)
    tasks = [
        asyncio.ensure_future(c)
        for c in (
            store.put(ns, "before", Entry(b"1")),
            store._write(half_then_fail),
            store._write(bad_sql),
            store.put(ns, "after", Entry(b"2")),
        )
    ]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    await parked
    assert isinstance(results[0], Written) and isinstance(results[3], Written)
    assert isinstance(results[1], StoreError) and "broke" in str(results[1])
    assert isinstance(results[2], StoreError) and "no_such_table" in str(results[2])
    listed = await store.list_keys(ns, prefix="", after=None, limit=10, now=NOW)
    assert [k.name for k in listed] == ["after", "before"]  # "half" was rolled back


async def test_reads_do_not_wait_for_an_open_write(store: SQLiteStore) -> None:
    ns = await new_ns(store)
    await store.put(ns, "k", Entry(b"v"))
    gate, parked = await _hold_writer(store)  # the writer sits inside BEGIN IMMEDIATE
    try:
        got = await asyncio.wait_for(store.get(ns, "k", now=NOW), 5)
        listed = await asyncio.wait_for(
            store.list_keys(ns, prefix="", after=None, limit=10, now=NOW), 5
        )
    finally:
        gate.set()
        await parked
    assert got == Entry(b"v") and listed == [KeyInfo("k")]


async def test_writes_wait_for_another_process_lock(store: SQLiteStore, tmp_path: Path) -> None:
    ns = await new_ns(store)
    con = raw(tmp_path / "kv")
    try:
        con.execute("BEGIN IMMEDIATE")  # another process holding the write lock
        put = asyncio.ensure_future(store.put(ns, "k", Entry(b"v")))
        await asyncio.sleep(0.3)
        assert not put.done()
        con.execute("COMMIT")
        await asyncio.wait_for(put, 5)  # went through once the lock was free
    finally:
        con.close()
    assert await store.get(ns, "k", now=NOW) == Entry(b"v")


@pytest.mark.parametrize("inline_reads", [False, True])
async def test_25_mib_value_round_trip(tmp_path: Path, inline_reads: bool) -> None:
    store = await SQLiteStore.open(tmp_path, inline_reads=inline_reads)
    try:
        ns = await new_ns(store)
        value = os.urandom(25 * 1024 * 1024)
        await store.put(ns, "big", Entry(value, None, '{"size":"25MiB"}'))
        await store.put_many(ns, [("big2", Entry(memoryview(value)[:1000].tobytes()))])
        got = await store.get(ns, "big", now=NOW)
        assert got is not None and got.value == value and got.metadata == '{"size":"25MiB"}'
        many = await store.get_many(ns, ["big", "big2"], now=NOW)
        assert many["big"].value == value and many["big2"].value == value[:1000]
    finally:
        await store.aclose()


async def test_inline_reads_match_the_reader_path(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path, inline_reads=True)
    try:
        ns = await new_ns(store)
        await store.put(ns, "k", Entry(b"v", NOW + 60, '{"m":1}'))
        await store.put(ns, "empty", Entry(b""))
        assert await store.get(ns, "k", now=NOW) == Entry(b"v", NOW + 60, '{"m":1}')
        assert await store.get(ns, "k", now=NOW + 60) is None
        assert await store.get(ns, "empty", now=NOW) == Entry(b"")
        assert await store.get(ns, "nope", now=NOW) is None
        with pytest.raises(NamespaceNotFound):
            await store.get("0" * 32, "k", now=NOW)
        # a write by another connection is seen at once (no stale snapshot kept open)
        con = raw(tmp_path)
        con.execute(schema.UPSERT, (ns, b"k", b"theirs", None, None, None, None, 0))
        con.close()
        assert await store.get(ns, "k", now=NOW) == Entry(b"theirs")
    finally:
        await store.aclose()


async def test_inline_list_pages_match_the_reader_path(tmp_path: Path) -> None:
    inline = await SQLiteStore.open(tmp_path, inline_reads=True)
    threaded = await SQLiteStore.open(tmp_path, inline_reads=False)
    try:
        ns = await new_ns(inline)
        await inline.put_many(
            ns,
            [
                (f"a{i:02}", Entry(b"v", NOW + i, f'{{"i":{i}}}' if i % 3 else None))
                for i in range(30)
            ]
            + [("b\u00e9", Entry(b"v")), ("b\U0001f600", Entry(b"v")), ("c", Entry(b"v"))],
        )
        cases = [
            ("", None, 1001, NOW),
            ("", None, 7, NOW + 10),  # the entry expiring at NOW + 10 is gone at NOW + 10
            ("a", "a05", 10, NOW),
            ("b", None, 1001, NOW),  # UTF-8 byte order: U+00E9 before U+1F600
            ("", "b\u00e9", 1001, NOW),
            ("zz", None, 10, NOW),  # an empty page
        ]
        for prefix, after, limit, now in cases:
            args = {"prefix": prefix, "after": after, "limit": limit, "now": now}
            got = await inline.list_keys(ns, **args)  # type: ignore[arg-type]
            assert got == await threaded.list_keys(ns, **args), args  # type: ignore[arg-type]
        page = await inline.list_keys(ns, prefix="a", after=None, limit=3, now=NOW + 10)
        assert [(k.name, k.expiration, k.metadata) for k in page] == [
            ("a11", NOW + 11, {"i": 11}),
            ("a12", NOW + 12, None),
            ("a13", NOW + 13, {"i": 13}),
        ]
        with pytest.raises(NamespaceNotFound):
            await inline.list_keys("0" * 32, prefix="", after=None, limit=10, now=NOW)
        # a write by another connection is seen at once (no stale snapshot kept open)
        con = raw(tmp_path)
        con.execute(schema.UPSERT, (ns, b"a", b"theirs", None, None, None, None, 0))
        con.close()
        page = await inline.list_keys(ns, prefix="", after=None, limit=1, now=NOW)
        assert page == [KeyInfo("a", None, None)]
    finally:
        await threaded.aclose()
        await inline.aclose()


async def test_list_pages_return_stored_text_exactly(tmp_path: Path) -> None:
    """A list page travels as JSON arrays (sqlite_schema.LIST): every key and metadata text
    comes back exactly as a plain per-row SELECT reads it, in the same order, page by page."""
    store = await SQLiteStore.open(tmp_path, inline_reads=True)
    threaded = await SQLiteStore.open(tmp_path, inline_reads=False)
    try:
        ns = await new_ns(store)
        odd = ["a\x00b", "a", "a\x00", "a\x01", '"q"', "back\\slash", "tab\t", "nl\n", "\x7f"]
        odd += ["\u2028", "\u00e9", "\ud7ff", "\ue000", "\uffff", "\U0001f600", "</script>"]
        odd += ["k" * 512, "\U0010ffff" * 128, "a\\u0000", "[1]", "null"]
        metadata = [None, '{"s":"\\u0000\\"x\\\\"}', '"\u00e9\U0001f600\u2028"', "[1, 2]", " 7 "]
        await store.put_many(
            ns,
            [
                (key, Entry(b"v", NOW + 2**40 + i if i % 2 else None, metadata[i % 5]))
                for i, key in enumerate(odd)
            ],
        )
        con = raw(tmp_path)
        expected = con.execute(
            "SELECT CAST(key AS TEXT), expiration, metadata FROM entries WHERE namespace_id = ?"
            " ORDER BY key",
            (ns,),
        ).fetchall()
        con.close()
        assert len(expected) == len(odd)
        for engine in (store, threaded):
            for prefix in ("", "a"):
                whole = await engine.list_keys(ns, prefix=prefix, after=None, limit=1001, now=NOW)
                assert whole == [row for row in expected if row[0].startswith(prefix)]
                assert all(type(k) is KeyInfo for k in whole)
                paged: list[KeyInfo] = []
                while page := await engine.list_keys(
                    ns, prefix=prefix, after=paged[-1].name if paged else None, limit=2, now=NOW
                ):
                    paged += page
                assert paged == whole
    finally:
        await threaded.aclose()
        await store.aclose()


async def test_listing_returns_limit_live_keys_among_expired(store: SQLiteStore) -> None:
    ns = await new_ns(store)
    await store.put_many(
        ns, [(f"k{i:02}", Entry(b"v", NOW + 1 if i % 2 else None)) for i in range(20)]
    )
    page = await store.list_keys(ns, prefix="k", after=None, limit=5, now=NOW + 1)
    assert [k.name for k in page] == ["k00", "k02", "k04", "k06", "k08"]
    page = await store.list_keys(ns, prefix="k", after="k08", limit=5, now=NOW + 1)
    assert [k.name for k in page] == ["k10", "k12", "k14", "k16", "k18"]
    assert await store.purge_expired(NOW + 1, limit=1000) == 10


async def test_deleting_a_namespace_deletes_its_rows(store: SQLiteStore, tmp_path: Path) -> None:
    acct = await store.default_account()
    keep, drop = await new_ns(store, "keep"), await new_ns(store, "drop")
    for ns in (keep, drop):
        await store.put_many(ns, [(f"k{i}", Entry(b"v")) for i in range(10)])
    await store.delete_namespace(acct, drop)
    con = raw(tmp_path / "kv")
    try:
        rows = con.execute("SELECT namespace_id, count(*) FROM entries GROUP BY 1").fetchall()
        assert rows == [(keep, 10)]
    finally:
        con.close()


async def test_aclose_is_idempotent_and_final(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path)
    ns = await new_ns(store)
    pending = asyncio.ensure_future(store.put(ns, "queued", Entry(b"v")))
    await asyncio.sleep(0)
    await store.aclose()  # flushes what was queued
    await store.aclose()
    await pending  # done: the write went through before the close
    assert pending.done() and pending.exception() is None
    with pytest.raises(StoreError, match="closed"):
        await store.get(ns, "queued", now=NOW)
    assert store._threads and not any(t.is_alive() for t in store._threads)
    con = raw(tmp_path)
    try:
        assert con.execute("SELECT value FROM entries").fetchall() == [(b"v",)]
    finally:
        con.close()


CHILD = """
import asyncio, sys
from edgekv._types import Entry
from edgekv.store.sqlite import SQLiteStore

async def main(directory, ns):
    store = await SQLiteStore.open(directory)

    async def put(n):
        await store.put(ns, f"k{n}", Entry(b"%d" % n))
        sys.stdout.write(f"{n}\\n")  # acknowledged: the put returned
        sys.stdout.flush()

    n = 0
    while True:
        await asyncio.gather(*(put(i) for i in range(n, n + 16)))
        n += 16

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path)
    ns = await new_ns(store)
    await store.aclose()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(tmp_path), ns, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    acked: list[int] = []
    deadline = time.monotonic() + 10
    try:
        while len(acked) < 500:  # well into the run: many group commits behind us
            line = await asyncio.wait_for(proc.stdout.readline(), deadline - time.monotonic())
            assert line, "the writer process died on its own"
            acked.append(int(line))
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), 10)
    assert proc.returncode == -signal.SIGKILL
    rest = await proc.stdout.read()  # acknowledged before the kill, still in the pipe
    acked += [int(line) for line in rest.split(b"\n")[:-1]]

    store = await SQLiteStore.open(tmp_path)
    try:
        keys = [f"k{n}" for n in acked]
        got: dict[str, Entry] = {}
        for i in range(0, len(keys), 100):
            got.update(await store.get_many(ns, keys[i : i + 100], now=NOW))
        missing = [k for k in keys if k not in got]
        assert missing == []
        assert all(got[f"k{n}"].value == b"%d" % n for n in acked)
        check = await store._read(lambda c: c.execute("PRAGMA integrity_check").fetchall())
        assert check == [("ok",)]
    finally:
        await store.aclose()
