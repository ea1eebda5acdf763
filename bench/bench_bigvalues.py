"""Big values next to small keys: bulk work on 10,000 small keys in a namespace that also holds
20 values of 25 MiB, against the same work in a namespace without them, in one run, on SQLite
and on PostgreSQL; and the longest wait of a write to another namespace meanwhile.

    python -m bench.bench_bigvalues [--quick] [--engines sqlite,postgres]

The big keys sort among the small ones (`k00000` … `k09999`, big ones `k00499x`, …), so every
bulk operation works on the B-tree pages around them. Targets: with the big values, bulk put
and bulk delete at ≥ 0.5x the throughput without them (≤ 2x slower); a single put to another
namespace, made every 10 ms while the bulk work runs, never waits more than 100 ms.

Writes bench/results/bigvalues.{md,json,png} (bigvalues-quick.* with --quick: 2 big values,
one round). PostgreSQL is a throwaway cluster of tests/pgcluster.py (fsync on).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from bench.harness import Report, Sample
from edgekv._types import Entry, Store

SMALL = 10_000
BIG_SIZE = 25 * 1024 * 1024
BIG_COUNT = 20
MAX_WAIT_MS = 100.0
ROUNDS = 3


def small_items() -> list[tuple[str, Entry]]:
    return [(f"k{i:05d}", Entry(b"v" * 100)) for i in range(SMALL)]


def big_keys(count: int) -> list[str]:
    step = SMALL // count
    return [f"k{i * step + step // 2:05d}x" for i in range(count)]  # among the small keys


@contextlib.asynccontextmanager
async def opened(engine: str, root: Path, dsn: str | None) -> AsyncIterator[Store]:
    if engine == "sqlite":
        from edgekv.store.sqlite import SQLiteStore

        store: Store = await SQLiteStore.open(root / engine)
    else:
        from tests import pgcluster

        from edgekv.store.postgres import PostgresStore

        assert dsn is not None
        store = await PostgresStore.open(await pgcluster.fresh_database(dsn))  # type: ignore[assignment]
    try:
        yield store
    finally:
        await store.aclose()


class OtherWrites:
    """A put to another namespace every 10 ms, timed, while the bulk work runs."""

    def __init__(self, store: Store, namespace_id: str) -> None:
        self.store, self.namespace_id = store, namespace_id
        self.waits_ns: list[int] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        i = 0
        while True:
            started = time.perf_counter_ns()
            await self.store.put(self.namespace_id, f"w{i % 100}", Entry(b"w"))
            self.waits_ns.append(time.perf_counter_ns() - started)
            i += 1
            await asyncio.sleep(0.01)

    def __enter__(self) -> OtherWrites:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def one_engine(
    report: Report, engine: str, root: Path, dsn: str | None, bigs: int, rounds: int
) -> None:
    items = small_items()
    keys = [k for k, _ in items]
    async with opened(engine, root, dsn) as store:
        account = await store.default_account()
        plain = (await store.create_namespace(account, "plain")).id
        heavy = (await store.create_namespace(account, "heavy")).id
        other = (await store.create_namespace(account, "other")).id
        big = Entry(b"B" * BIG_SIZE)
        for key in big_keys(bigs):
            await store.put(heavy, key, big)
        samples: dict[tuple[str, str], list[int]] = {}
        waits: dict[str, list[int]] = {"plain": [], "heavy": []}
        for _ in range(rounds):
            for label, ns in (("plain", plain), ("heavy", heavy)):
                with OtherWrites(store, other) as writes:
                    started = time.perf_counter_ns()
                    await store.put_many(ns, items)
                    put_ns = time.perf_counter_ns() - started
                    started = time.perf_counter_ns()
                    await store.delete_many(ns, keys)
                    delete_ns = time.perf_counter_ns() - started
                    await asyncio.sleep(0.05)  # a last timed write after the bulk work
                samples.setdefault(("put", label), []).append(put_ns)
                samples.setdefault(("delete", label), []).append(delete_ns)
                waits[label] += writes.waits_ns
        assert await store.get(heavy, big_keys(bigs)[0], now=0) is not None  # still there
    with_bigs = f"with {bigs} values of 25 MiB among them"
    for op, verb in (("put", "bulk put (put_many)"), ("delete", "bulk delete (delete_many)")):
        group = f"{engine}: {verb} of 10,000 small keys"
        best = {label: [min(samples[(op, label)])] for label in ("plain", "heavy")}
        report.add(
            group,
            "namespace of small keys only",
            Sample(best["plain"], SMALL),
            unit="keys/s",
            baseline=True,
        )
        report.add(group, with_bigs, Sample(best["heavy"], SMALL), unit="keys/s", target_ratio=0.5)
    for label, case in (("plain", "beside small keys only"), ("heavy", with_bigs)):
        longest = max(waits[label]) / 1e6
        mark = "✅" if longest <= MAX_WAIT_MS else "❌"
        report.add(
            f"{engine}: a put to another namespace meanwhile (every 10 ms)",
            f"during bulk work {case}",
            Sample(waits[label]),
            unit="puts/s",
            baseline=label == "plain",
            note=f"longest wait {longest:.1f} ms (target ≤ {MAX_WAIT_MS:g} ms) {mark}",
        )


@contextlib.contextmanager
def postgres(engines: list[str]) -> Iterator[str | None]:
    if "postgres" not in engines:
        yield None
        return
    from tests import pgcluster

    with pgcluster.running() as dsn:
        yield dsn


async def main(quick: bool, engines: list[str]) -> None:
    bigs = 2 if quick else BIG_COUNT
    rounds = 1 if quick else ROUNDS
    report = Report(
        "bigvalues-quick" if quick else "bigvalues",
        "edgekv: bulk work beside 25 MiB values vs without them",
        notes=[
            f"10,000 keys of 100-byte values; the heavy namespace also holds {bigs} values of "
            "25 MiB whose keys sort among them. Engine calls (`Store.put_many` / "
            "`delete_many`), durable (SQLite WAL + synchronous=FULL; PostgreSQL fsync on).",
            f"Each bulk case: best of {rounds} rounds; the other-namespace puts: every wait "
            "of every round (p99 and the longest).",
            "SQLite keeps values over 2 KiB in a `blobs` table (rowid B-tree) and only a "
            "reference in the key B-tree; PostgreSQL keeps them out of line by itself (TOAST).",
            "A shared 2-CPU machine under other load (here: the test suites of several "
            "branches): compare the ratios of one run, not absolute figures across runs.",
            "The other-namespace put waits for the bulk transaction in progress on SQLite "
            "(one writer per database file, and a bulk write is all or nothing): its longest "
            "wait is that transaction's length, with or without the large values.",
        ],
    )
    with tempfile.TemporaryDirectory(prefix="edgekv-bench-big-") as tmp, postgres(engines) as dsn:
        for engine in engines:
            await one_engine(report, engine, Path(tmp), dsn, bigs, rounds)
            shutil.rmtree(Path(tmp) / engine, ignore_errors=True)
    for path in report.write():
        print(path)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 big values, one round")
    parser.add_argument("--engines", default="sqlite,postgres", help="comma-separated")
    options = parser.parse_args()
    asyncio.run(main(options.quick, options.engines.split(",")))
