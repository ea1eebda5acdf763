"""Large values on the SQLite engine: kept out of the key B-tree (in `blobs`, see
tests/store/test_big_values.py for what that buys), removed with their entry however it goes;
and a data file of the first schema (large values inline) still opens, its values moved."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edgekv._types import Entry
from edgekv.store import sqlite_schema as schema
from edgekv.store.sqlite import FILENAME, SQLiteStore

pytestmark = pytest.mark.skipif(
    "sqlite" not in os.environ.get("EDGEKV_TEST_ENGINES", "sqlite"),
    reason="sqlite engine not selected (EDGEKV_TEST_ENGINES)",
)

NOW = 1_700_000_000
BIG = bytes(range(256)) * 400  # 100 KiB: well over the row limit


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = await SQLiteStore.open(tmp_path / "kv")
    try:
        yield s
    finally:
        await s.aclose()


def raw(directory: Path) -> sqlite3.Connection:
    return sqlite3.connect(directory / FILENAME, isolation_level=None)


def blob_count(directory: Path) -> int:
    with raw(directory) as con:
        return int(con.execute("SELECT count(*) FROM blobs").fetchone()[0])


async def test_a_large_value_lives_outside_the_key_btree(
    store: SQLiteStore, tmp_path: Path
) -> None:
    account = await store.default_account()
    ns = (await store.create_namespace(account, "n")).id
    edge = b"e" * schema.BLOB_MIN
    await store.put(ns, "big", Entry(BIG, NOW + 600, '{"m":1}'))
    await store.put(ns, "edge", Entry(edge))  # exactly the limit stays in the row
    with raw(tmp_path / "kv") as con:
        rows = dict(con.execute("SELECT key, length(value) FROM entries").fetchall())
        assert rows == {b"big": 0, b"edge": schema.BLOB_MIN}
    got = await store.get(ns, "big", now=NOW)
    assert got is not None and (got.value, got.expiration, got.metadata) == (
        BIG,
        NOW + 600,
        '{"m":1}',
    )
    many = await store.get_many(ns, ["big", "edge", "none"], now=NOW)
    assert {k: e.value for k, e in many.items()} == {"big": BIG, "edge": edge}
    listed = await store.list_keys(ns, prefix="", after=None, limit=10, now=NOW)
    assert [k.name for k in listed] == ["big", "edge"]
    stats = await store.namespace_stats(ns, now=NOW)  # a blob's bytes count as its entry's
    assert (stats.key_count, stats.bytes) == (2, 3 + len(BIG) + 7 + 4 + len(edge))
    await store.put(ns, "big", Entry(b"now small"))
    stats = await store.namespace_stats(ns, now=NOW)
    assert (stats.key_count, stats.bytes) == (2, 3 + 9 + 4 + len(edge))


async def test_inline_reads_of_large_values_go_to_a_reader(tmp_path: Path) -> None:
    store = await SQLiteStore.open(tmp_path / "kv", inline_reads=True)
    try:
        ns = (await store.create_namespace(await store.default_account(), "n")).id
        await store.put(ns, "big", Entry(BIG))
        await store.put(ns, "small", Entry(b"s"))
        assert store._get_inline((ns, b"big")) is False  # not read on the caller's thread
        assert (await store.get(ns, "big", now=NOW)).value == BIG  # type: ignore[union-attr]
        assert (await store.get(ns, "small", now=NOW)).value == b"s"  # type: ignore[union-attr]
    finally:
        await store.aclose()


async def test_a_blob_goes_with_its_entry_however_it_goes(
    store: SQLiteStore, tmp_path: Path
) -> None:
    directory = tmp_path / "kv"
    account = await store.default_account()
    ns = (await store.create_namespace(account, "n")).id
    await store.put(ns, "k", Entry(BIG))
    await store.put(ns, "k", Entry(BIG + b"2"))  # replaced by another large value
    assert blob_count(directory) == 1
    assert (await store.get(ns, "k", now=NOW)).value == BIG + b"2"  # type: ignore[union-attr]
    await store.put(ns, "k", Entry(b"small now"))  # replaced by a small one
    assert blob_count(directory) == 0
    await store.put(ns, "k", Entry(BIG))
    await store.delete(ns, "k")
    assert blob_count(directory) == 0
    await store.put_many(ns, [("a", Entry(BIG)), ("a", Entry(BIG + b"!")), ("b", Entry(BIG))])
    assert blob_count(directory) == 2  # the first "a" was replaced within the batch
    assert (await store.get(ns, "a", now=NOW)).value == BIG + b"!"  # type: ignore[union-attr]
    await store.delete_many(ns, ["a"])
    assert blob_count(directory) == 1
    await store.put(ns, "ttl", Entry(BIG, NOW + 60))
    assert await store.purge_expired(NOW + 60) == 1
    assert blob_count(directory) == 1
    await store.delete_namespace(account, ns)
    assert blob_count(directory) == 0


async def test_a_file_of_the_first_schema_opens_with_its_large_values_moved(
    tmp_path: Path,
) -> None:
    """A data file written by the first release (schema 1: values inline) opens: every
    migration runs, every value reads back, and the large ones now live in `blobs`."""
    directory = tmp_path / "kv"
    directory.mkdir()
    first = schema.MIGRATIONS[0]
    assert isinstance(first, str)
    with raw(directory) as con:
        con.execute("PRAGMA journal_mode = WAL")
        for statement in first.split(";"):
            con.execute(statement)
        con.execute("INSERT INTO accounts (id) VALUES (?)", ("a" * 32,))
        con.execute(
            "INSERT INTO namespaces (id, account_id, title) VALUES (?, ?, ?)",
            ("n" * 32, "a" * 32, "old"),
        )
        rows = [
            ("n" * 32, b"big", BIG, NOW + 600, '{"m":1}'),
            ("n" * 32, b"empty", b"", None, None),
            ("n" * 32, b"small", b"s", None, None),
        ]
        con.executemany("INSERT INTO entries VALUES (?, ?, ?, ?, ?)", rows)
        con.execute("PRAGMA user_version = 1")
    store = await SQLiteStore.open(directory)
    try:
        got = {k: await store.get("n" * 32, k, now=NOW) for k in ("big", "empty", "small")}
        assert {k: (e.value, e.expiration, e.metadata) for k, e in got.items() if e} == {
            "big": (BIG, NOW + 600, '{"m":1}'),
            "empty": (b"", None, None),
            "small": (b"s", None, None),
        }
        assert blob_count(directory) == 1
        stats = await store.namespace_stats("n" * 32, now=NOW)
        assert (stats.key_count, stats.bytes) == (3, 3 + len(BIG) + 7 + 5 + 5 + 1)
        await store.delete("n" * 32, "big")
        assert blob_count(directory) == 0
        with raw(directory) as con:
            assert con.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
    finally:
        await store.aclose()
