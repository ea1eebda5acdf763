"""The write cost of the maintained namespace totals (`Store.namespace_stats`): the same writes
with the stats triggers in place and with them dropped, in the same run, on SQLite and on
PostgreSQL (a throwaway cluster of tests/pgcluster.py: loopback, fsync on).

    python -m bench.bench_stats [--quick] [--no-postgres]

Cases: 64 concurrent single puts (durable), one put_many of 10,000 keys, one delete_many of
10,000 keys. The two stores take turns round by round, so the machine's load hits both alike.
Writes bench/results/stats.{md,json,png} (stats-quick.* with --quick).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from bench.harness import Report, Sample, concurrent_sample
from edgekv._types import Entry, Store
from edgekv.store.sqlite import FILENAME, SQLiteStore

SQLITE_TRIGGERS = ("entries_stats_insert", "entries_stats_delete", "entries_stats_update")
PG_TRIGGERS = ("edgekv_entries_stats_insert", "edgekv_entries_stats_update",
               "edgekv_entries_stats_delete")  # fmt: skip
BULK = 10_000
VALUE = b"v" * 100


async def bulk_sample(store: Store, ns: str, rounds: int, prefix: str) -> tuple[Sample, Sample]:
    """Timed put_many then delete_many of BULK new keys, `rounds` times each."""
    puts: list[int] = []
    deletes: list[int] = []
    clock = asyncio.get_running_loop().time
    for r in range(rounds):
        keys = [f"{prefix}{r}-{i:05d}" for i in range(BULK)]
        t0 = clock()
        await store.put_many(ns, [(k, Entry(VALUE)) for k in keys])
        puts.append(int((clock() - t0) * 1e9))
        t0 = clock()
        await store.delete_many(ns, keys)
        deletes.append(int((clock() - t0) * 1e9))
    return Sample(puts, BULK), Sample(deletes, BULK)


async def compare(report: Report, engine: str, stores: dict[str, Store], rounds: int) -> None:
    namespaces = {}
    for name, store in stores.items():
        account = await store.default_account()
        namespaces[name] = (await store.create_namespace(account, "bench")).id
    results: dict[str, dict[str, list[Sample]]] = {
        n: {"put": [], "bulk": [], "del": []} for n in stores
    }
    counter = itertools.count()
    for _ in range(rounds):
        for name, store in stores.items():
            ns = namespaces[name]
            keys = (f"single-{next(counter)}" for _ in itertools.count())

            async def put(key: str, store: Store = store, ns: str = ns) -> None:
                await store.put(ns, key, Entry(VALUE))

            results[name]["put"].append(await concurrent_sample(put, keys, 20, 64))
            bulk, deleted = await bulk_sample(store, ns, 1, f"bulk-{next(counter)}-")
            results[name]["bulk"].append(bulk)
            results[name]["del"].append(deleted)
    labels = {"put": ("64 concurrent puts", "puts/s"), "bulk": ("put_many 10,000 keys", "keys/s"),
              "del": ("delete_many 10,000 keys", "keys/s")}  # fmt: skip
    for case, (title, unit) in labels.items():
        for name in stores:
            best = max(results[name][case], key=lambda s: s.rate)
            report.add(
                f"{engine}: {title}",
                f"{engine}, {name}",
                best,
                unit=unit,
                baseline=name == "no stats triggers",
            )


def drop_sqlite_triggers(directory: Path) -> None:
    conn = sqlite3.connect(directory / FILENAME)
    for trigger in SQLITE_TRIGGERS:
        conn.execute(f"DROP TRIGGER {trigger}")
    conn.commit()
    conn.close()


async def sqlite_case(report: Report, rounds: int, tmp: Path) -> None:
    with_dir, without_dir = tmp / "with", tmp / "without"
    await (await SQLiteStore.open(without_dir)).aclose()  # create, then drop its triggers
    drop_sqlite_triggers(without_dir)
    stores: dict[str, Store] = {
        "no stats triggers": await SQLiteStore.open(without_dir),
        "stats maintained": await SQLiteStore.open(with_dir),
    }
    try:
        await compare(report, "SQLite", stores, rounds)
    finally:
        for store in stores.values():
            await store.aclose()


async def pg_case(report: Report, rounds: int, dsn: str) -> None:
    import asyncpg
    from tests import pgcluster

    from edgekv.store.postgres import PostgresStore

    with_dsn = await pgcluster.fresh_database(dsn)
    without_dsn = await pgcluster.fresh_database(dsn)
    await (await PostgresStore.open(without_dsn)).aclose()
    con: Any = await asyncpg.connect(without_dsn)
    for trigger in PG_TRIGGERS:
        await con.execute(f"DROP TRIGGER {trigger} ON edgekv_entries")
    await con.close()
    stores: dict[str, Store] = {
        "no stats triggers": await PostgresStore.open(without_dsn),  # type: ignore[dict-item]
        "stats maintained": await PostgresStore.open(with_dsn),  # type: ignore[dict-item]
    }
    try:
        await compare(report, "PostgreSQL", stores, rounds)
    finally:
        for store in stores.values():
            await store.aclose()


async def run(quick: bool, dsn: str | None) -> Report:
    rounds = 2 if quick else 5
    report = Report(
        "stats-quick" if quick else "stats",
        "Write cost of the maintained namespace totals (namespace_stats)",
    )
    report.notes += [
        "Same writes on two stores in the same run, one with the stats triggers, one with them"
        " dropped; rounds alternate, the best round of each is shown.",
        "Puts: 64 concurrent loops of 20 single puts of 100 bytes (durable: answered after"
        " commit). Bulk: one put_many, then one delete_many, of 10,000 new keys.",
        "The machine's 2 CPUs are shared with other work: compare ratios within a group.",
    ]
    with tempfile.TemporaryDirectory(prefix="edgekv-bench-stats-") as tmp:
        await sqlite_case(report, rounds, Path(tmp))
    if dsn:
        await pg_case(report, rounds, dsn)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args()
    if args.no_postgres:
        report = asyncio.run(run(args.quick, None))
    else:
        from tests import pgcluster

        with pgcluster.running() as dsn:
            report = asyncio.run(run(args.quick, dsn))
    for path in report.write():
        print(path)


if __name__ == "__main__":
    main()
