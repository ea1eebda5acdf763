"""Location cache memory: resident memory per cached entry, at 1,000,000 cached 100-byte values,
against the same keys and values held in a plain `dict[str, bytes]`; and the cost of a hit.

    python -m bench.bench_cache_memory [--quick]

A SQLite store is filled once with N keys (`key-000000000000`, 16 characters) of distinct
100-byte values. Each case then runs in a fresh subprocess: it opens that store, reads every key
once untimed (so SQLite's page cache is at its size before the first measurement), takes VmRSS
(/proc/self/status, after `gc.collect()`), fills the structure through `get` one key at a time
(a fresh key string and a fresh `now` per read, as the binding makes them; values and versions
come fresh from SQLite, as they would from the centre), collects and takes VmRSS again:

- `dict[str, bytes]` (baseline): `table[key] = (await store.get(...)).value`;
- `LocationCache` (`push=False`) with a byte budget that holds all N;
- `LocationCache` with half that budget: entries are evicted, `stats.bytes_cached` must stay
  within the budget.

B/entry is the RSS growth over N (over the entries held, for the half budget). The target is
2 x (key + value bytes) + 120 per entry. Rows are entries per MiB (higher is better), so the
target is a minimum. The full-budget case then hits every key once more (fresh `now` each: a
hit must not pin memory) and times a hit (`await cache.get`) of one hot key and of keys in
sequence over the whole cache, against a bare `await` of an async dict lookup.

Writes bench/results/cache-memory.{md,json,png} (cache-memory-quick.* with --quick:
N = 100,000).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.harness import Report, Sample, ameasure
from edgekv._types import Entry

VALUE_BYTES = 100
BATCH = 1000  # hits per timed call
MIB = 1 << 20


def key_of(i: int) -> str:
    return f"key-{i:012d}"


def rss() -> int:
    gc.collect()
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


async def fill_store(directory: Path, n: int) -> str:
    """Write n keys of distinct random 100-byte values; returns the namespace id."""
    from edgekv.store.sqlite import SQLiteStore

    store = await SQLiteStore.open(directory)
    try:
        account = await store.default_account()
        ns = (await store.create_namespace(account, "memory")).id
        for start in range(0, n, 10_000):
            items = [
                (key_of(i), Entry(os.urandom(VALUE_BYTES)))
                for i in range(start, min(n, start + 10_000))
            ]
            await store.put_many(ns, items)
        return ns
    finally:
        await store.aclose()


def allocated(obj: object) -> int:
    """`sys.getsizeof`, rounded up to the allocator's 16-byte blocks."""
    return -(-sys.getsizeof(obj) // 16) * 16


# -- one case, in its own process ----------------------------------------------------------------
def batched(fn: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        for _ in range(BATCH):
            await fn()

    return run


async def case(name: str, directory: Path, ns: str, n: int, seconds: float) -> dict[str, Any]:
    from edgekv.edge.cache import ENTRY_OVERHEAD, LocationCache
    from edgekv.store.sqlite import SQLiteStore

    store = await SQLiteStore.open(directory, inline_reads=True)
    for start in range(0, n, BATCH):  # SQLite's page cache at its size before measuring
        await store.get_many(ns, [key_of(i) for i in range(start, min(n, start + BATCH))], now=0)
    out: dict[str, Any] = {"case": name, "n": n, "entry_overhead": ENTRY_OVERHEAD}
    clock = time.time
    if name == "dict":
        table: dict[str, bytes] = {}
        before = rss()
        for i in range(n):
            key = key_of(i)
            entry = await store.get(ns, key, now=math.floor(clock()))
            assert entry is not None
            table[key] = entry.value
        out["rss_growth"] = rss() - before
        out["entries"] = len(table)

        async def bare() -> bytes | None:
            return table.get("key-000000000007")

        out["hit_bare"] = (await ameasure(batched(bare), seconds=seconds, items=BATCH)).rate
        await store.aclose()
        return out

    per_entry = ENTRY_OVERHEAD + len(ns) + len(key_of(0)) + VALUE_BYTES
    budget = per_entry * n if name == "cache" else per_entry * n // 2
    cache = LocationCache(store, location="bench", cache_bytes=budget, push=False)
    before = rss()
    for i in range(n):
        entry = await cache.get(ns, key_of(i), now=math.floor(clock()))
        assert entry is not None and entry.cache_status == "MISS"
    out["rss_growth"] = rss() - before
    stats = cache.stats
    out.update(
        budget=budget,
        entries=stats.entries,
        bytes_cached=stats.bytes_cached,
        evictions=stats.evictions,
        honoured=stats.bytes_cached <= budget,
    )
    if name == "cache":
        copy = cache._slot(ns, key_of(n - 1))  # what one copy is made of, as allocated
        assert copy is not None and copy.version is not None
        out["parts"] = {
            "key str": allocated(copy.key),
            "value bytes": allocated(copy.value),
            # As the copy keeps it (slot.compact_version: an int), not the str `.version` makes.
            "version": allocated(copy._version),
            "CachedEntry": allocated(copy),
        }
        grown = rss()
        for i in range(n):  # a hit per key, each with its own `now`: must not pin memory
            entry = await cache.get(ns, key_of(i), now=math.floor(clock()))
            assert entry is not None and entry.cache_status == "HIT"
        out["rss_growth_after_hits"] = rss() - grown
        now = math.floor(clock())
        hot = key_of(7)
        sample: Sample = await ameasure(
            batched(lambda: cache.get(ns, hot, now=now)), seconds=seconds, items=BATCH
        )
        out["hit_hot"] = sample.rate
        keys = [key_of(i) for i in range(n)]
        position = 0

        def sweep() -> Awaitable[Entry | None]:
            nonlocal position
            position = position + 1 if position + 1 < n else 0
            return cache.get(ns, keys[position], now=now)

        out["hit_sweep"] = (await ameasure(batched(sweep), seconds=seconds, items=BATCH)).rate
        assert cache.stats.misses == n  # every timed read was a hit
    await cache.aclose()
    return out


def child(args: argparse.Namespace) -> None:
    result = asyncio.run(case(args.child, Path(args.data), args.ns, args.n, args.seconds))
    print(json.dumps(result))


def spawn(name: str, directory: Path, ns: str, n: int, seconds: float) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.bench_cache_memory", "--child", name]
    cmd += ["--data", str(directory), "--ns", ns, "--n", str(n), "--seconds", str(seconds)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"case {name} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- the report ----------------------------------------------------------------------------------
def memory_row(bytes_per_entry: float) -> dict[str, float]:
    return {"rate": MIB / bytes_per_entry, "p50": 0.0, "p99": 0.0, "mean": 0.0, "calls": 1}


def rate_row(rate: float) -> dict[str, float]:
    return {
        "rate": rate,
        "p50": BATCH / rate * 1e6,
        "p99": 0.0,
        "mean": BATCH / rate * 1e6,
        "calls": 1,
    }


def run(quick: bool) -> Report:
    n = 100_000 if quick else 1_000_000
    seconds = 0.5 if quick else 2.0
    key_bytes = len(key_of(0))
    load = os.getloadavg()[0]
    target = 2 * (key_bytes + VALUE_BYTES) + 120
    report = Report(
        "cache-memory-quick" if quick else "cache-memory",
        "Location cache memory per cached entry",
    )
    with tempfile.TemporaryDirectory(prefix="edgekv-bench-") as tmp:
        directory = Path(tmp)
        ns = asyncio.run(fill_store(directory, n))
        results = {
            name: spawn(name, directory, ns, n, seconds) for name in ("dict", "cache", "half")
        }
    base, full, half = results["dict"], results["cache"], results["half"]
    per = {name: r["rss_growth"] / r["entries"] for name, r in results.items()}
    g = f"RSS per entry, {n:,} {VALUE_BYTES}-byte values, {key_bytes}-character keys"
    report.add(
        g,
        "dict[str, bytes] of the same keys and values",
        memory_row(per["dict"]),
        unit="entries/MiB",
        baseline=True,
        note=f"{per['dict']:.0f} B/entry",
    )
    report.add(
        g,
        "LocationCache, budget holds all",
        memory_row(per["cache"]),
        unit="entries/MiB",
        target_rate=MIB / target,
        note=f"{per['cache']:.0f} B/entry (target ≤ {target} B)",
    )
    report.add(
        g,
        "LocationCache, half the budget (evicting)",
        memory_row(per["half"]),
        unit="entries/MiB",
        target_rate=MIB / target,
        note=f"{per['half']:.0f} B/entry over the {half['entries']:,} entries held",
    )
    h = "cache hit, `await cache.get` of a 100-byte value (batches of 1,000)"
    report.add(
        h,
        "bare await of an async dict lookup",
        rate_row(base["hit_bare"]),
        unit="gets/s",
        baseline=True,
    )
    report.add(h, "LocationCache.get, one hot key", rate_row(full["hit_hot"]), unit="gets/s")
    report.add(
        h,
        f"LocationCache.get, keys in sequence over all {n:,}",
        rate_row(full["hit_sweep"]),
        unit="gets/s",
    )
    for name, r in (("budget holds all", full), ("half budget", half)):
        report.notes.append(
            f"{name}: budget {r['budget']:,} B, {r['entries']:,} entries, bytes_cached "
            f"{r['bytes_cached']:,} ({'within' if r['honoured'] else 'OVER'} the budget), "
            f"{r['evictions']:,} evictions; RSS growth {r['rss_growth'] / r['bytes_cached']:.2f}x "
            f"the bytes counted (ENTRY_OVERHEAD {r['entry_overhead']} per entry)."
        )
    report.notes.append(
        f"Target: 2 x ({key_bytes} + {VALUE_BYTES}) + 120 = {target} B/entry "
        f"= {MIB / target:,.0f} entries/MiB. The dict baseline alone is {per['dict']:.0f} B/entry."
    )
    parts = full["parts"]
    dict_slot = per["dict"] - parts["key str"] - parts["value bytes"]
    data = parts["key str"] + parts["value bytes"] + parts["version"] + dict_slot
    report.notes.append(
        "Where a copy's bytes go: "
        + ", ".join(f"{part} {size} B" for part, size in parts.items())
        + f", its slot in the namespace's dict (about {dict_slot:.0f} B, as in the baseline). "
        f"Key, value, version and dict slot alone take {data:.0f} B of the {target} B target, "
        f"leaving {target - data:.0f} B for the record of a copy (the smallest Python object "
        "the collector tracks takes 32 B; an Entry, whose subclass a copy is so that a hit "
        "returns it without building anything, 80 B)."
    )
    report.notes.append(
        f"A hit per key after the fill (each with its own `now`) grew RSS by "
        f"{full['rss_growth_after_hits'] / n:.1f} B/entry."
    )
    report.notes.append(
        f"Load average (1 min) at the start: {load:.2f} on {os.cpu_count()} CPUs: the hit rates "
        "are noisy when others share the machine; the memory rows are not."
    )
    report.notes.append(
        "Each case in a fresh subprocess; values and versions read from SQLite (inline reads), "
        "a fresh key string and `now` per read. RSS from /proc/self/status after gc.collect()."
    )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 entries instead of 1,000,000")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--ns", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    report = run(args.quick)
    for path in report.write():
        print(path)


if __name__ == "__main__":
    main()
