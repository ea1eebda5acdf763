"""Hot rows of the SQLite engine (store/sqlite_hot.py): a key read again with nothing committed
in between is answered without a statement, and any commit — by the store, by another
connection, by another process — is seen by the very next read. Real files, a real second
process; no mocks."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edgekv._types import Entry
from edgekv.store.sqlite import FILENAME, SQLiteStore
from edgekv.store.sqlite_hot import DORMANT, WINDOW, HotRows

pytestmark = pytest.mark.skipif(
    "sqlite" not in os.environ.get("EDGEKV_TEST_ENGINES", "sqlite"),
    reason="sqlite engine not selected (EDGEKV_TEST_ENGINES)",
)

NOW = 1_700_000_000


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = await SQLiteStore.open(tmp_path / "kv", inline_reads=True)
    try:
        yield s
    finally:
        await s.aclose()


async def new_ns(store: SQLiteStore) -> str:
    return (await store.create_namespace(await store.default_account(), "n")).id


def statements(store: SQLiteStore) -> list[str]:
    """Every statement the calling thread's inline connection runs from now on."""
    seen: list[str] = []
    store._local.conn.set_trace_callback(seen.append)
    return seen


async def value(store: SQLiteStore, ns: str, key: str, now: int = NOW) -> bytes | None:
    entry = await store.get(ns, key, now=now)
    return None if entry is None else entry.value


async def test_a_hot_key_is_read_without_a_statement(store: SQLiteStore) -> None:
    ns = await new_ns(store)
    await store.put(ns, "k", Entry(b"one"))
    assert await value(store, ns, "k") == b"one"
    seen = statements(store)
    for _ in range(3):
        assert await value(store, ns, "k") == b"one"
    assert seen == []
    # A known miss is kept too.
    assert await value(store, ns, "nope") is None
    seen.clear()
    assert await value(store, ns, "nope") is None
    assert seen == []


async def test_the_stores_own_write_is_seen_by_the_next_read(store: SQLiteStore) -> None:
    ns = await new_ns(store)
    await store.put(ns, "k", Entry(b"one"))
    assert await value(store, ns, "k") == b"one"
    assert await value(store, ns, "absent") is None
    await store.put(ns, "k", Entry(b"two", metadata='{"v":2}'))
    await store.put(ns, "absent", Entry(b"here now"))
    entry = await store.get(ns, "k", now=NOW)
    assert entry is not None and (entry.value, entry.metadata) == (b"two", '{"v":2}')
    assert await value(store, ns, "absent") == b"here now"
    await store.delete(ns, "k")
    assert await value(store, ns, "k") is None


async def test_a_commit_by_another_process_is_seen_by_the_next_read(
    store: SQLiteStore, tmp_path: Path
) -> None:
    ns = await new_ns(store)
    await store.put(ns, "k", Entry(b"one"))
    assert await value(store, ns, "k") == b"one"
    assert await value(store, ns, "k") == b"one"  # now kept
    script = (
        "import sqlite3, sys\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "cursor = c.execute('UPDATE entries SET value = ? WHERE namespace_id = ? AND key = ?',"
        " (b'from elsewhere', sys.argv[2], b'k'))\n"
        "assert cursor.rowcount == 1\n"
    )
    database = tmp_path / "kv" / FILENAME
    command = [sys.executable, "-c", script, str(database), ns]
    await asyncio.to_thread(subprocess.run, command, check=True, timeout=30)
    assert await value(store, ns, "k") == b"from elsewhere"


async def test_a_checkpoint_then_a_foreign_write_is_seen(
    store: SQLiteStore, tmp_path: Path
) -> None:
    ns = await new_ns(store)
    await store.put(ns, "k", Entry(b"one"))
    assert await value(store, ns, "k") == b"one"
    other = sqlite3.connect(tmp_path / "kv" / FILENAME, isolation_level=None)
    try:
        other.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the WAL restarts from frame 0
        assert await value(store, ns, "k") == b"one"
        other.execute(
            "UPDATE entries SET value = ? WHERE namespace_id = ? AND key = ?", (b"two", ns, b"k")
        )
        assert await value(store, ns, "k") == b"two"
    finally:
        other.close()


async def test_a_kept_entry_still_expires_at_its_second(store: SQLiteStore) -> None:
    ns = await new_ns(store)
    await store.put(ns, "k", Entry(b"v", expiration=NOW + 10))
    assert await value(store, ns, "k", NOW + 9) == b"v"
    assert await value(store, ns, "k", NOW + 9) == b"v"  # kept
    assert await value(store, ns, "k", NOW + 10) is None


def _wal_database(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (x)")  # the -shm file exists from here on
    return conn


def test_rows_are_bounded(tmp_path: Path) -> None:
    database = tmp_path / "db.sqlite3"
    conn = _wal_database(database)
    try:
        hot = HotRows.open(database, limit=3)
        assert hot is not None
        for i in range(3):
            assert hot.look(("ns", b"%d" % i)) is False
            hot.keep(("ns", b"%d" % i), Entry(b"v"))
        assert hot.look(("ns", b"2")) == Entry(b"v")
        hot.keep(("ns", b"3"), None)  # past the limit: starts afresh
        assert (hot.look(("ns", b"0")), hot.look(("ns", b"3"))) == (False, None)
        conn.execute("INSERT INTO t VALUES (1)")
        assert hot.look(("ns", b"3")) is False
        hot.close()
        with pytest.raises(OSError):
            hot.look(("ns", b"3"))
    finally:
        conn.close()


def test_cold_reads_put_it_to_sleep_and_it_wakes_again(tmp_path: Path) -> None:
    """A window of looks that mostly miss costs more than it saves: it stops looking (and
    keeping) for a while, then tries again."""
    database = tmp_path / "db.sqlite3"
    conn = _wal_database(database)
    try:
        hot = HotRows.open(database)
        assert hot is not None
        hot.look(("ns", b"hot"))
        hot.keep(("ns", b"hot"), Entry(b"v"))
        for i in range(WINDOW - 1):  # every other key is read once
            assert hot.look(("ns", b"cold-%d" % i)) is False
        assert hot.look(("ns", b"hot")) is False  # dormant: not looked up, nothing kept
        hot.keep(("ns", b"hot"), Entry(b"v"))
        for _ in range(DORMANT - 1):
            assert hot.look(("ns", b"hot")) is False
        assert hot.look(("ns", b"hot")) is False  # awake: looks again, and keeps again
        hot.keep(("ns", b"hot"), Entry(b"v"))
        assert hot.look(("ns", b"hot")) == Entry(b"v")
        hot.close()
    finally:
        conn.close()


async def test_a_hot_key_among_cold_reads_stays_correct(store: SQLiteStore) -> None:
    """Dormant or not, every read answers what is stored now."""
    ns = await new_ns(store)
    await store.put_many(ns, [(f"k{i}", Entry(b"%d" % i)) for i in range(WINDOW * 2)])
    for round_ in range(3):
        for i in range(WINDOW * 2):
            assert await value(store, ns, f"k{i}") == b"%d" % i
        await store.put(ns, "k7", Entry(b"new-%d" % round_))
        assert await value(store, ns, "k7") == b"new-%d" % round_
        await store.put(ns, "k7", Entry(b"7"))


def test_no_shared_memory_file_keeps_nothing(tmp_path: Path) -> None:
    assert HotRows.open(tmp_path / "missing.sqlite3") is None
