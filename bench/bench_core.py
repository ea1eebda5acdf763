"""Core benchmark: the embedded SQLite store through the binding against raw `sqlite3` doing the
same work, in one run, on 100,000 keys of 100-byte values.

    python -m bench.bench_core [--quick]

Writes bench/results/core.{md,json,png} (core-quick.* with --quick). Both sides use the same
schema, WAL and synchronous=FULL, so a write is durable on both when it returns.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import edgekv
from bench.harness import RESULTS, Report, ameasure, measure
from edgekv._types import Entry, Store
from edgekv.store.sqlite import SQLiteStore
from edgekv.store.sqlite_schema import HEAD, LOG_PUT, UPSERT_SMALL

KEYS = 100_000
PAGE = 1000
BULK = 10_000
CONCURRENCY = 64
DEEP = 99_000  # keys before the deep page: the last full page of the data set
SCHEMA = """
CREATE TABLE entries (
    namespace_id TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL,
    expiration INTEGER, metadata TEXT, PRIMARY KEY (namespace_id, key)
) WITHOUT ROWID
"""
RAW_GET = "SELECT value, expiration, metadata FROM entries WHERE namespace_id = ? AND key = ?"
RAW_LIST = (
    "SELECT key, expiration, metadata FROM entries WHERE namespace_id = ? AND key > ?"
    " AND (expiration IS NULL OR expiration > ?) ORDER BY key LIMIT ?"
)
RAW_PUT = "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, NULL, NULL)"
NS = "0" * 32  # the raw side's namespace id


def key(i: int) -> str:
    return f"user:{i:08d}"


def value(i: int) -> bytes:
    return (f"{i:08d}" * 13)[:100].encode()


def raw_open(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    return conn


def raw_bulk(conn: sqlite3.Connection, pairs: list[tuple[str, bytes]]) -> None:
    conn.execute("BEGIN")
    conn.executemany(RAW_PUT, [(NS, k.encode(), v) for k, v in pairs])
    conn.execute("COMMIT")


def raw_twin(path: Path, source: Path, namespace_id: str) -> sqlite3.Connection:
    """A raw connection on a new file with edgekv's own schema (tables, indexes and the stats
    triggers, copied from `source`) and one namespace: the SQL a `put_many` runs, without
    edgekv's Python around it."""
    conn = raw_open(path)
    conn.execute("PRAGMA recursive_triggers = ON")  # as edgekv's connections
    with sqlite3.connect(source) as src:
        rows = src.execute(
            "SELECT type, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
    order = {"table": 0, "index": 1, "trigger": 2}
    for _, sql in sorted(rows, key=lambda row: order.get(row[0], 3)):
        conn.execute(sql)
    conn.execute(
        "INSERT INTO namespaces (id, account_id, title) VALUES (?, 'bench', 'bench')",
        (namespace_id,),
    )
    return conn


def raw_twin_bulk(
    conn: sqlite3.Connection, namespace_id: str, pairs: list[tuple[str, bytes]]
) -> None:
    """What SQLiteStore.put_many runs: the entries (stats triggers fire), a change row per
    pair, the namespace's new head; one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    head = conn.execute(HEAD, (namespace_id,)).fetchone()[0]
    seqs = range(head + 1, head + 1 + len(pairs))
    raws = [k.encode() for k, _ in pairs]
    none = itertools.repeat(None)
    ns = itertools.repeat(namespace_id)
    conn.executemany(
        UPSERT_SMALL, zip(ns, raws, (v for _, v in pairs), none, none, seqs, strict=False)
    )
    conn.executemany(LOG_PUT, zip(ns, seqs, raws, none, none, strict=False))
    conn.execute("UPDATE namespaces SET head = ? WHERE id = ?", (head + len(pairs), namespace_id))
    conn.execute("COMMIT")


def cycler(items: list[Any]) -> Callable[[], Any]:
    return itertools.cycle(items).__next__


async def list_cases(
    report: Report,
    g: str,
    timing: dict[str, Any],
    raw: sqlite3.Connection,
    after: bytes,
    ns: edgekv.KVNamespace,
    cursor: str | None,
    store: Store,
) -> None:
    report.add(
        g,
        "raw sqlite3 keyset query",
        measure(lambda: raw.execute(RAW_LIST, (NS, after, 0, PAGE)).fetchall(), **timing),
        unit="pages/s",
        baseline=True,
    )
    report.add(
        g,
        f"binding list(limit={PAGE})",
        await ameasure(lambda: ns.list(limit=PAGE, cursor=cursor), **timing),
        unit="pages/s",
        target_rate=1000,
    )
    after_key = after.decode() or None
    report.add(
        g,
        f"engine store.list_keys(limit={PAGE + 1})",
        await ameasure(
            lambda: store.list_keys(ns.id, prefix="", after=after_key, limit=PAGE + 1, now=0),
            **timing,
        ),
        unit="pages/s",
    )


async def run(quick: bool) -> Report:
    rounds = 3  # best of 3: other people's load on a shared machine only slows a round down
    timing: dict[str, Any] = {"seconds": 0.6 if quick else 4.5, "rounds": rounds}
    name = "core-quick" if quick else "core"
    report = Report(name, "edgekv core: SQLite engine through the binding vs raw sqlite3")
    report.notes += [
        f"{KEYS:,} keys of 100-byte values; both sides WAL + synchronous=FULL, same table.",
        "Binding: `edgekv.open(dir)` then `await ns.get/put/list/put_many` (async, event loop).",
        "Raw: a synchronous loop on one `sqlite3` connection (no event loop, no threads).",
        "Default `edgekv.open(dir)` reads small values inline (lock-free, on the caller's"
        " thread); `inline_reads=False` sends every read to a reader thread.",
        "engine rows: the `Store` methods directly, without the binding's checks and objects.",
        "Each case: best of 3 rounds (a shared 2-CPU machine); p50/p99 are per call.",
    ]
    rng = random.Random(7)
    order = list(range(KEYS))
    rng.shuffle(order)
    read_keys = [key(i) for i in order]
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="core-", suffix=".tmp", dir=RESULTS))
    try:
        raw = raw_open(tmp / "raw.sqlite3")
        raw.execute(SCHEMA)
        raw_bulk(raw, [(key(i), value(i)) for i in range(KEYS)])

        kv = edgekv.open(tmp / "kv")
        ns = await kv.create_namespace("t")
        for start in range(0, KEYS, BULK):
            await ns.put_many([(key(i), value(i)) for i in range(start, start + BULK)])
        kv_threaded = edgekv.open(tmp / "kv", inline_reads=False)
        ns_threaded = kv_threaded.namespace(ns.id)
        store = kv.store

        # (a) point reads -------------------------------------------------------------------
        g = "get (point read)"
        nxt = cycler(read_keys)
        report.add(
            g,
            "raw sqlite3 point-read loop",
            measure(lambda: raw.execute(RAW_GET, (NS, nxt().encode())).fetchone(), **timing),
            baseline=True,
        )
        report.add(
            g,
            "binding get (default: inline)",
            await ameasure(lambda: ns.get(nxt()), **timing),
            target_ratio=0.5,
        )
        report.add(
            g,
            "binding get, inline_reads=False (reader thread)",
            await ameasure(lambda: ns_threaded.get(nxt()), **timing),
        )
        report.add(
            g,
            "engine store.get (default: inline)",
            await ameasure(lambda: store.get(ns.id, nxt(), now=0), **timing),
        )

        def raw_get(k: bytes) -> Any:
            return raw.execute(RAW_GET, (NS, k)).fetchone()

        report.add(
            g,
            "raw sqlite3 via asyncio.to_thread",
            await ameasure(lambda: asyncio.to_thread(raw_get, nxt().encode()), **timing),
            note="raw read plus a thread round trip",
        )

        async def gets() -> None:
            await asyncio.gather(*(ns.get(nxt()) for _ in range(CONCURRENCY)))

        report.add(
            g,
            f"{CONCURRENCY} concurrent binding gets",
            await ameasure(gets, **timing, items=CONCURRENCY),
        )

        # (a') one key read again and again, nothing committed meanwhile: hot rows ----------
        g = "get of one hot key (nothing committed between reads)"
        hot = read_keys[0]
        raw_hot = (NS, hot.encode())
        report.add(
            g,
            "raw sqlite3 point read of that key",
            measure(lambda: raw.execute(RAW_GET, raw_hot).fetchone(), **timing),
            baseline=True,
        )
        report.add(
            g,
            "binding get (default: inline, hot rows)",
            await ameasure(lambda: ns.get(hot), **timing),
            note="answered without a statement (store/sqlite_hot.py)",
        )

        # (b) list pages --------------------------------------------------------------------
        cursor: str | None = None
        for _ in range(DEEP // PAGE):
            cursor = (await ns.list(limit=PAGE, cursor=cursor)).cursor
        assert cursor is not None
        deep_cursor = cursor
        deep_after = key(DEEP - 1).encode()
        first = (await ns.list(limit=PAGE)).keys
        deep = (await ns.list(limit=PAGE, cursor=deep_cursor)).keys
        assert first[0].name == key(0) and deep[0].name == key(DEEP) and len(deep) == PAGE
        for g, after, cur in (
            ("list, first page", b"", None),
            (f"list, page after {DEEP:,} keys", deep_after, deep_cursor),
        ):
            await list_cases(report, g, timing, raw, after, ns, cur, store)

        # (c) bulk write --------------------------------------------------------------------
        g = f"bulk write, {BULK:,} pairs"
        calls = 6 if quick else 15
        batches = [
            [(f"bulk:{side}:{c:03d}:{i:05d}", value(i)) for i in range(BULK)]
            for side in ("raw", "kv", "engine", "twin")
            for c in range(calls + 2)
        ]
        n = calls + 2
        raw_batches, kv_batches = cycler(batches[:n]), cycler(batches[n : 2 * n])
        entry_batches = cycler([[(k, Entry(v)) for k, v in b] for b in batches[2 * n : 3 * n]])
        twin_batches = cycler(batches[3 * n :])
        twin = raw_twin(tmp / "twin.sqlite3", tmp / "kv" / "edgekv.sqlite3", NS)
        report.add(
            g,
            "raw executemany, one transaction",
            measure(
                lambda: raw_bulk(raw, raw_batches()), n=calls, warmup=2, rounds=rounds, items=BULK
            ),
            unit="pairs/s",
            baseline=True,
        )
        report.add(
            g,
            "raw executemany of edgekv's writes, one transaction",
            measure(
                lambda: raw_twin_bulk(twin, NS, twin_batches()),
                n=calls,
                warmup=2,
                rounds=rounds,
                items=BULK,
            ),
            unit="pairs/s",
            note="edgekv's schema: stats triggers, a change row per pair, the head",
        )
        twin.close()
        report.add(
            g,
            "binding put_many",
            await ameasure(
                lambda: ns.put_many(kv_batches()), n=calls, warmup=2, rounds=rounds, items=BULK
            ),
            unit="pairs/s",
            target_rate=200_000,
        )
        report.add(
            g,
            "engine store.put_many",
            await ameasure(
                lambda: store.put_many(ns.id, entry_batches()),
                n=calls,
                warmup=2,
                rounds=rounds,
                items=BULK,
            ),
            unit="pairs/s",
        )
        del batches

        # (d) durable single writes ---------------------------------------------------------
        g = "put (durable)"
        nxt_put = cycler(read_keys)
        new_value = value(-1)
        report.add(
            g,
            "raw loop, one commit per write",
            measure(lambda: raw.execute(RAW_PUT, (NS, nxt_put().encode(), new_value)), **timing),
            unit="puts/s",
            baseline=True,
            note="the fsync rate",
        )
        report.add(
            g,
            "binding put, sequential awaits",
            await ameasure(lambda: ns.put(nxt_put(), new_value), **timing),
            unit="puts/s",
        )

        async def puts() -> None:
            await asyncio.gather(*(ns.put(nxt_put(), new_value) for _ in range(CONCURRENCY)))

        report.add(
            g,
            f"binding put, {CONCURRENCY} concurrent (group commit)",
            await ameasure(puts, **timing, items=CONCURRENCY),
            unit="puts/s",
            target_rate=20_000,
        )
        new_entry = Entry(new_value)

        async def engine_puts() -> None:
            await asyncio.gather(
                *(store.put(ns.id, nxt_put(), new_entry) for _ in range(CONCURRENCY))
            )

        report.add(
            g,
            f"engine store.put, {CONCURRENCY} concurrent",
            await ameasure(engine_puts, **timing, items=CONCURRENCY),
            unit="puts/s",
        )
        if isinstance(store, SQLiteStore):
            before, gathers = store.commits, 20
            for _ in range(gathers):
                await puts()
            per = (store.commits - before) / gathers
            report.notes.append(f"Group commit: {per:.2f} commits per {CONCURRENCY} puts.")
        await kv_threaded.aclose()
        await kv.aclose()
        raw.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short run (seconds, not minutes)")
    args = parser.parse_args()
    report = asyncio.run(run(args.quick))
    for path in report.write():
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
