"""Large values must not make the keys around them expensive, on every engine (the `store`
fixture: memory, SQLite, PostgreSQL). Bounded: each wait has a limit."""

from __future__ import annotations

import asyncio
import time

from edgekv._types import Entry, Store

MiB = 1024 * 1024


async def test_bulk_work_beside_large_values_costs_about_the_same(store: Store) -> None:
    """Was: on SQLite each page split near a large row copied it whole (a WITHOUT ROWID table
    keeps full rows in its interior pages), so a 10,000-key bulk delete beside one 25 MiB value
    took ~300x longer and held every other writer meanwhile. Here: 2,000 small keys sorting
    among three 8 MiB values; the heavy case may take at most 5x the plain one (or 5 s)."""
    account = await store.default_account()
    plain = (await store.create_namespace(account, "plain")).id
    heavy = (await store.create_namespace(account, "heavy")).id
    other = (await store.create_namespace(account, "other")).id
    for i in range(3):
        await store.put(heavy, f"k{i * 600 + 300:05d}x", Entry(b"B" * (8 * MiB)))
    items = [(f"k{i:05d}", Entry(b"v" * 100)) for i in range(2000)]
    keys = [k for k, _ in items]

    async def bulk(ns: str, limit: float) -> tuple[float, float]:
        """(seconds of the bulk put and delete, longest wait of a put to another namespace)"""
        waits: list[float] = []

        async def other_writes() -> None:
            while True:
                started = time.perf_counter()
                await store.put(other, "w", Entry(b"w"))
                waits.append(time.perf_counter() - started)
                await asyncio.sleep(0.01)

        writer = asyncio.create_task(other_writes())
        try:
            started = time.perf_counter()
            await asyncio.wait_for(store.put_many(ns, items), limit)
            await asyncio.wait_for(store.delete_many(ns, keys), limit)
            return time.perf_counter() - started, max(waits, default=0.0)
        finally:
            writer.cancel()

    base, base_wait = min([await bulk(plain, 30) for _ in range(2)])
    limit = max(5.0, 5 * base)
    heavy_time, heavy_wait = await bulk(heavy, limit)
    assert heavy_time <= limit, (base, heavy_time)
    assert heavy_wait <= max(5.0, 5 * base_wait), (base_wait, heavy_wait)
    assert (await store.get(heavy, "k00300x", now=0)) is not None
