"""The SQLite engine's versions and feed: a round-1 file (schema 1) opens and migrates, a failed
condition fails only its own write in a group-commit batch, and a long poll wakes at the commits
of another process writing the same file."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from pathlib import Path

import pytest

from edgekv._exceptions import PreconditionFailed
from edgekv._types import Condition, Entry, Written
from edgekv.store import sqlite as engine
from edgekv.store import sqlite_schema as schema
from edgekv.store.sqlite import FILENAME, SCHEMA_VERSION, SQLiteStore
from tests.store.test_sqlite import _hold_writer

pytestmark = pytest.mark.skipif(
    "sqlite" not in os.environ.get("EDGEKV_TEST_ENGINES", "sqlite"),
    reason="sqlite engine not selected (EDGEKV_TEST_ENGINES)",
)

NOW = 1_700_000_000
ACCOUNT = "a" * 32
NS = "06779da6940b431db6e566b4846d64db"


def round_one_file(directory: Path) -> None:
    """A data file as round 1 wrote it: schema 1 only, with an account, a namespace, keys."""
    directory.mkdir(parents=True)
    con = sqlite3.connect(directory / FILENAME, isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")
    for statement in schema.MIGRATIONS[0].split(";"):
        con.execute(statement)
    con.execute("PRAGMA user_version = 1")
    con.execute("INSERT INTO accounts (id) VALUES (?)", (ACCOUNT,))
    con.execute(
        "INSERT INTO namespaces (id, account_id, title) VALUES (?, ?, 'old')", (NS, ACCOUNT)
    )
    con.executemany(
        "INSERT INTO entries (namespace_id, key, value, expiration, metadata)"
        " VALUES (?, ?, ?, ?, ?)",
        [(NS, b"a", b"1", None, None), (NS, b"b", b"2", NOW + 100, '{"m":1}')],
    )
    con.close()


async def test_a_round_one_file_opens_and_follows_the_feed(tmp_path: Path) -> None:
    directory = tmp_path / "kv"
    round_one_file(directory)
    store = await SQLiteStore.open(directory)
    try:
        a = await store.get(NS, "a", now=NOW)
        b = await store.get(NS, "b", now=NOW)
        assert a is not None and a.value == b"1" and a.version == "0"
        assert b is not None and b.metadata == '{"m":1}' and b.expiration == NOW + 100
        head = await store.head(NS)
        page = await store.changes(NS, since=head)
        assert page.changes == []
        # The old version is a version like any other: a conditional write can use it once.
        written = await store.put(NS, "a", Entry(b"new"), condition=Condition("0", NOW))
        assert written.version != "0"
        with pytest.raises(PreconditionFailed):
            await store.put(NS, "a", Entry(b"x"), condition=Condition("0", NOW))
        changed = await store.changes(NS, since=head)
        assert [(c.op, c.key, c.version) for c in changed.changes] == [
            ("put", "a", written.version)
        ]
        # A namespace made after the migration, and one deleted and re-made under NS's id.
        await store.delete_namespace(ACCOUNT, NS)
        again = await store.create_namespace(ACCOUNT, "again", NS)
        put = await store.put(again.id, "a", Entry(b"x"))
        assert int(put.version) > int(written.version)
    finally:
        await store.aclose()
    con = sqlite3.connect(directory / FILENAME)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    con.close()


async def test_a_failed_condition_fails_alone_in_its_batch(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path / "kv")
    try:
        ns = (await store.create_namespace(await store.default_account(), "n")).id
        first = await store.put(ns, "k", Entry(b"0"))
        commits = store.commits
        gate, parked = await _hold_writer(store)
        calls = [
            store.put(ns, "before", Entry(b"1")),
            *(
                store.put(ns, "k", Entry(b"%d" % i), condition=Condition(first.version, NOW))
                for i in range(5)
            ),
            store.put(ns, "new", Entry(b"x"), condition=Condition(None, NOW)),
            store.put(ns, "new", Entry(b"y"), condition=Condition(None, NOW)),
            store.delete(ns, "k", condition=Condition(first.version, NOW), now=NOW),
            store.put(ns, "after", Entry(b"2")),
        ]
        tasks = [asyncio.ensure_future(c) for c in calls]
        await asyncio.sleep(0)
        gate.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await parked
        assert store.commits - commits == 2  # the parked job, then the whole batch at once
        kinds = [type(r) for r in results]
        assert kinds == [
            Written,
            Written,
            *[PreconditionFailed] * 4,
            Written,
            PreconditionFailed,
            PreconditionFailed,
            Written,
        ]
        won = results[1]
        assert isinstance(won, Written)
        assert all(
            isinstance(r, PreconditionFailed) and r.version == won.version for r in results[2:6]
        )
        entry = await store.get(ns, "k", now=NOW)
        assert entry is not None and entry.value == b"0" and entry.version == won.version
        page = await store.changes(ns, since=int(first.version))
        assert [(c.key, c.op) for c in page.changes] == [
            ("before", "put"),
            ("k", "put"),
            ("new", "put"),
            ("after", "put"),
        ]
    finally:
        await store.aclose()


async def test_a_poll_wakes_at_another_process_commit(tmp_path: Path) -> None:
    directory = tmp_path / "kv"
    store = await SQLiteStore.open(directory)
    other = await SQLiteStore.open(directory)  # another process's connections and threads
    try:
        ns = (await store.create_namespace(await store.default_account(), "n")).id
        head = await store.head(ns)
        poll = asyncio.ensure_future(store.changes(ns, since=head, wait=20))
        await asyncio.sleep(0.2)
        started = time.monotonic()
        await other.put(ns, "k", Entry(b"theirs"))
        page = await asyncio.wait_for(poll, 10)
        assert [c.key for c in page.changes] == ["k"]
        assert time.monotonic() - started < engine._FOREIGN_POLL + 1.0
    finally:
        await other.aclose()
        await store.aclose()
