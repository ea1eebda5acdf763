"""The copies a `LocationCache` keeps (edgekv.edge.copies, edgekv.edge.slot), at store level
over a real `MemoryStore`: eviction in order of use across namespaces, the byte budget through
churn, and the entries a hit hands out."""

from __future__ import annotations

import copy
import pickle
import random

from edgekv._types import Absent, Entry
from edgekv.edge.cache import ENTRY_OVERHEAD, LocationCache
from edgekv.edge.slot import CachedEntry, CachedMiss, Extra
from edgekv.store.memory import MemoryStore

NOW = 1_700_000_000


async def centre(*titles: str) -> tuple[MemoryStore, list[str]]:
    store = MemoryStore()
    account = await store.default_account()
    return store, [(await store.create_namespace(account, t)).id for t in titles]


async def status(cache: LocationCache, ns: str, key: str) -> str | None:
    entry = await cache.get(ns, key, now=NOW)
    assert entry is not None
    return entry.cache_status


async def test_eviction_takes_the_least_recently_used_across_namespaces() -> None:
    store, (a, b) = await centre("a", "b")
    for ns in (a, b):
        await store.put_many(ns, [(f"k{i}", Entry(b"x" * 50)) for i in range(4)])
    size = ENTRY_OVERHEAD + len(a) + 2 + 50
    cache = LocationCache(store, location="ams", cache_bytes=6 * size, push=False)
    for key in ("k0", "k1", "k2"):  # a:k0 a:k1 a:k2 b:k0 b:k1 b:k2, oldest first
        await cache.get(a, key, now=NOW)
    for key in ("k0", "k1", "k2"):
        await cache.get(b, key, now=NOW)
    assert await status(cache, a, "k0") == "HIT"  # used again: now the newest
    assert (await cache.get_many(b, ["k0"], now=NOW))["k0"].cache_status == "HIT"
    await cache.get(a, "k3", now=NOW)  # evicts a:k1, the least recently used
    await cache.get(b, "k3", now=NOW)  # evicts a:k2
    stats = cache.stats
    assert (stats.entries, stats.evictions, stats.bytes_cached) == (6, 2, 6 * size)
    for ns, key in ((a, "k0"), (b, "k0"), (b, "k1"), (b, "k2"), (a, "k3"), (b, "k3")):
        assert await status(cache, ns, key) == "HIT", (ns, key)
    assert stats.misses == 8  # six fills and two new keys; every read above was a hit
    # The loop above made a:k0 the oldest again: fetching a:k1 evicts it, and so on.
    assert await status(cache, a, "k1") == "MISS"
    assert await status(cache, a, "k0") == "MISS"  # evicts b:k0
    assert await status(cache, b, "k1") == "HIT"
    assert await status(cache, b, "k0") == "MISS"


async def test_the_budget_holds_through_churn_and_counts_back_to_zero() -> None:
    store, (ns,) = await centre("churn")
    rng = random.Random(7)
    keys = [f"k{i}" for i in range(40)] + ["ключ", "キー", "🔑"]  # multi-byte keys count bytes
    budget = 12 * (ENTRY_OVERHEAD + len(ns) + 200)
    cache = LocationCache(store, location="ams", cache_bytes=budget, push=False)
    for step in range(2000):
        key = rng.choice(keys)
        action = rng.random()
        if action < 0.25:
            value = bytes(rng.randrange(256) for _ in range(rng.randrange(300)))
            metadata = rng.choice([None, '{"é":1}', '{"n":"' + "m" * rng.randrange(80) + '"}'])
            await cache.put(ns, key, Entry(value, None, metadata))
        elif action < 0.3:
            await cache.delete(ns, key)  # leaves a negative copy
        elif action < 0.35:
            await cache.put_many(ns, [(key, Entry(b"bulk"))])  # drops the copy
        elif action < 0.45:
            await cache.get_many(ns, rng.sample(keys, 5), now=NOW + step // 100)
        else:
            await cache.get(ns, key, now=NOW + step // 100, cache_ttl=rng.choice([60, 3]))
        assert 0 <= cache.stats.bytes_cached <= budget
    stats = cache.stats
    assert stats.evictions > 0 and stats.entries > 0
    cache.drop_namespace(ns)  # every copy leaves one by one: the bytes count back exactly
    assert (stats.entries, stats.bytes_cached) == (0, 0)


async def test_a_hit_hands_out_one_entry_equal_to_the_data() -> None:
    store, (ns,) = await centre("hits")
    await store.put(ns, "k", Entry(b"v", NOW + 600, '{"m":1}'))
    cache = LocationCache(store, location="ams", push=False)
    miss = await cache.get(ns, "k", now=NOW)
    first = await cache.get(ns, "k", now=NOW)
    again = await cache.get(ns, "k", now=NOW + 1)
    assert miss is not None and first is not None
    assert first is again  # nothing is built for a hit
    assert miss.cache_status == "MISS" and first.cache_status == "HIT"
    assert first == Entry(b"v", NOW + 600, '{"m":1}', "HIT")
    assert Entry(b"v", NOW + 600, '{"m":1}', "HIT") == first
    assert first != Entry(b"v", NOW + 600, '{"m":1}', "MISS")
    assert first.version == miss.version is not None
    cache.clear()
    assert (first.value, first.metadata) == (b"v", '{"m":1}')  # a reader's entry outlives it
    await store.delete(ns, "gone")
    for expected in ("MISS", "HIT"):  # the centre says missing; then a known miss, cached
        negative = await cache.get(ns, "gone", now=NOW)
        assert isinstance(negative, Absent) and negative.cache_status == expected


def test_a_copy_gives_back_its_version_exactly() -> None:
    # A copy keeps a decimal version as an int (half the memory of the str): `.version` must
    # still be the very text the centre gave, and any other text is kept as it is.
    for version in ("0", "7", "1700000000", "123456789012345678901234567890"):
        copy = CachedEntry(Extra("n"), "k", Entry(b"v", None, None, None, version), NOW, NOW)
        assert copy.version == version and type(copy.version) is str
        assert type(copy._version) is int
        assert copy.entry_as("STALE") == Entry(b"v", None, None, "STALE", version)
        assert copy.entry_as("STALE").version == version  # type: ignore[union-attr]
    for odd in ("007", "", "-1", "+1", "1e3", " 1", "\u0661\u0662", "v1", None):
        copy = CachedEntry(Extra("n"), "k", Entry(b"v", None, None, None, odd), NOW, NOW)
        assert copy.version == odd and copy._version is odd
    assert CachedMiss(Extra("n"), "k", NOW, NOW).version is None  # a known miss


async def test_copies_share_their_namespaces_extra_until_one_needs_its_own() -> None:
    store, (a, b) = await centre("a", "b")
    for ns in (a, b):
        await store.put_many(ns, [("k0", Entry(b"x")), ("k1", Entry(b"y"))])
    cache = LocationCache(store, location="ams", push=False)
    for ns in (a, b):
        for key in ("k0", "k1"):
            await cache.get(ns, key, now=NOW)
    a0, a1, b0 = cache._slot(a, "k0"), cache._slot(a, "k1"), cache._slot(b, "k0")
    assert a0 is not None and a1 is not None and b0 is not None
    shared = cache._shared[a]
    assert a0.extra is a1.extra is shared and b0.extra is cache._shared[b]
    assert (a0.namespace, b0.namespace) == (a, b)
    # `read` lives in Entry's cache_status slot: the status a hit hands out stays HIT.
    assert (a0.read, a0.cache_status) == (NOW, "HIT")
    updating = await cache.get(a, "k0", now=NOW + 50)  # late in its 60 s window: a refresh
    assert updating is not None and updating.cache_status == "UPDATING"
    assert a0.extra is not shared and a0.refresh is not None and a0.namespace == a
    assert a1.refresh is None and shared.refresh is None and a1.born == NOW  # not shared
    await cache.settle()
    assert a0.extra is shared  # refreshed: it shares again
    fresh = cache._slot(a, "k0")
    assert fresh is not None and fresh is not a0 and fresh.extra is shared
    assert (await cache.get(a, "k0", now=NOW + 50)) is fresh
    cache.drop_namespace(a)
    assert a not in cache._shared and b in cache._shared  # nothing kept for an empty namespace


def test_copying_or_pickling_a_copy_gives_the_plain_entry_it_stands_for() -> None:
    # A hit hands out the cache's own record, whose Entry slots serve other names: copy.copy,
    # deepcopy and pickle must still give back the entry a reader saw, as a plain Entry.
    hit = CachedEntry(Extra("n"), "k", Entry(b"v", NOW + 600, '{"m":1}', None, "42"), NOW, NOW)
    expected = Entry(b"v", NOW + 600, '{"m":1}', "HIT", "42")
    for twin in (copy.copy(hit), copy.deepcopy(hit), pickle.loads(pickle.dumps(hit))):
        assert twin.__class__ is Entry and twin == expected and twin.version == "42"
    miss = CachedMiss(Extra("n"), "k", NOW, NOW)
    assert copy.copy(miss) == Entry(b"", None, None, None, None)
