"""`LocationCache` over a real centre (a counted `MemoryStore`), through the binding, with fake
clocks: every rule of system.md's consistency contract, one or more tests each."""

from __future__ import annotations

import asyncio

import pytest

from edgekv import KVError
from edgekv._types import Entry
from edgekv.edge.cache import ENTRY_OVERHEAD, LocationCache
from edgekv.edge.stats import stats_payload
from edgekv.store.memory import MemoryStore
from tests.edge.conftest import START, Location, World

NOW = int(START)


async def settle(*locations: Location) -> None:
    """Let every background fetch of these locations finish."""
    for _ in range(10):
        await asyncio.sleep(0)
    for loc in locations:
        while loc.cache._tasks:
            await asyncio.gather(*list(loc.cache._tasks))


async def until(condition: object, rounds: int = 50) -> None:
    for _ in range(rounds):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")


# -- hits, misses, cache_status (rule 10) ----------------------------------------------------


async def test_miss_then_hit(world: World) -> None:
    await world.admin.put("k", "v", metadata={"m": 1})
    ams = await world.location("ams")
    first = await ams.ns.get_with_metadata("k")
    assert (first.value, first.metadata, first.cache_status) == ("v", {"m": 1}, "MISS")
    again = await ams.ns.get_with_metadata("k")
    assert (again.value, again.metadata, again.cache_status) == ("v", {"m": 1}, "HIT")
    assert await ams.ns.get("k", "bytes") == b"v"
    assert world.central.reads == 1
    stats = ams.cache.stats
    assert (stats.hits, stats.misses, stats.central_fetches, stats.entries) == (2, 1, 1, 1)


# -- rules 1 and 2: durable writes, read-your-writes -----------------------------------------


async def test_read_your_writes_whatever_the_cache_ttl(world: World) -> None:
    await world.admin.put("k", "old")
    ams = await world.location("ams")
    assert await ams.ns.get("k", cache_ttl=3600) == "old"
    await ams.ns.put("k", "new", metadata={"v": 2}, expiration_ttl=600)
    assert (await world.admin.get("k")) == "new"  # at the centre before put() returned
    seen = await ams.ns.get_with_metadata("k", cache_ttl=3600)
    assert (seen.value, seen.metadata, seen.cache_status) == ("new", {"v": 2}, "HIT")
    await ams.ns.delete("k")
    assert await world.admin.get("k") is None
    assert await ams.ns.get("k", cache_ttl=3600) is None
    assert world.central.reads == 1  # only the very first read reached the centre
    # Bulk writes drop the copies (an import must not flush the cache): the next read asks.
    assert await ams.ns.get(["a", "b"], cache_ttl=3600) == {"a": None, "b": None}
    await ams.ns.put_many([("a", "1"), ("b", "2"), ("a", "3")])
    await ams.ns.delete_many(["b"])
    assert await ams.ns.get(["a", "b"], cache_ttl=3600) == {"a": "3", "b": None}
    assert world.central.reads == 3


async def test_a_fetch_in_flight_never_overwrites_a_later_write(world: World) -> None:
    await world.admin.put("k", "old")
    ams = await world.location("ams")
    world.central.gate.clear()  # the centre answers "old", slowly
    reader = asyncio.create_task(ams.ns.get("k"))
    await until(lambda: world.central.calls["get"] == 1)
    await ams.ns.put("k", "new")
    world.central.gate.set()
    assert await reader in ("old", "new")  # concurrent with the write: either is right
    await settle(ams)
    assert await ams.ns.get("k") == "new"
    assert world.central.calls["get"] == 1


async def test_overlapping_writes_leave_the_centre_in_charge(world: World) -> None:
    ams = await world.location("ams")
    world.central.write_gate.clear()
    first = asyncio.create_task(ams.ns.put("k", "one"))
    second = asyncio.create_task(ams.ns.put("k", "two"))
    await until(lambda: world.central.calls["put"] == 2)
    world.central.write_gate.set()
    await asyncio.gather(first, second)
    # Which one the centre kept is its business; the location must agree with it.
    assert await ams.ns.get("k") == await world.admin.get("k")
    assert world.central.calls["get"] == 1


async def test_a_failed_write_drops_the_copy(world: World) -> None:
    await world.admin.put("k", "v")
    ams = await world.location("ams")
    assert await ams.ns.get("k") == "v"
    world.central.available = False
    with pytest.raises(KVError) as info:
        await ams.ns.put("k", "w")
    assert info.value.status == 503
    assert str(info.value).startswith("KV PUT failed: 503 ")
    world.central.available = True
    world.advance(1)  # past the retry interval
    assert await ams.ns.get("k") == "v"  # asked the centre again: the write may have landed
    assert world.central.reads == 2


# -- rule 3: bounded staleness elsewhere ------------------------------------------------------


async def test_other_locations_see_a_write_within_cache_ttl(world: World) -> None:
    await world.admin.put("k", "v1")
    ams = await world.location("ams", refresh_ahead=0)
    fra = await world.location("fra", refresh_ahead=0)
    assert await ams.ns.get("k") == "v1"
    assert await ams.ns.get("gone") is None  # absence is cached too
    await fra.ns.put("k", "v2")
    await fra.ns.put("gone", "here")
    world.advance(59.999)
    assert await ams.ns.get("k") == "v1"  # old value before the bound...
    assert await ams.ns.get("gone") is None
    world.advance(0.001)
    seen = await ams.ns.get_with_metadata("k")
    assert (seen.value, seen.cache_status) == ("v2", "MISS")  # ...new value at it
    assert await ams.ns.get("gone") == "here"


async def test_lower_cache_ttl_refetches(world: World) -> None:
    await world.admin.put("k", "v1")
    ams = await world.location("ams")
    assert await ams.ns.get("k", cache_ttl=300) == "v1"
    await world.admin.put("k", "v2")
    world.advance(100)
    assert await ams.ns.get("k", cache_ttl=300) == "v1"  # age 100 < 300
    assert await ams.ns.get("k", cache_ttl=90) == "v2"  # age 100 >= 90: refetched
    assert await ams.ns.get("k", cache_ttl=300) == "v2"
    assert world.central.reads == 2


# -- rule 4: negative lookups -------------------------------------------------------------


async def test_a_cached_miss_answers_hit_as_production_does(world: World) -> None:
    ams = await world.location("ams")
    first = await ams.ns.get_with_metadata("nope")
    assert (first.value, first.metadata, first.cache_status) == (None, None, "MISS")
    again = await ams.ns.get_with_metadata("nope")
    assert again.to_dict() == {"value": None, "metadata": None, "cacheStatus": "HIT"}
    assert await ams.ns.get("nope") is None  # plain get: still just "missing"
    assert await ams.ns.get("nope", "json") is None
    assert await ams.ns.get(["nope"]) == {"nope": None}
    assert await ams.ns.get_with_metadata(["nope"]) == {"nope": None}
    await world.admin.put("nope", "now here")  # at the centre: this copy stays until its TTL
    assert (await ams.ns.get_with_metadata("nope")).cache_status == "HIT"
    world.advance(60)
    seen = await ams.ns.get_with_metadata("nope")
    assert (seen.value, seen.cache_status) == ("now here", "MISS")
    assert world.central.reads == 2


async def test_a_storm_on_a_missing_key_reaches_the_centre_once(world: World) -> None:
    ams = await world.location("ams")
    results = await asyncio.gather(*(ams.ns.get("nope") for _ in range(200)))
    assert results == [None] * 200
    for _ in range(100):
        assert (await ams.ns.get_with_metadata("nope")).value is None
    assert await ams.ns.get(["nope"]) == {"nope": None}
    assert world.central.reads == 1


# -- rule 5: exact expiration -------------------------------------------------------------


async def test_expiration_is_exact_even_for_cached_copies(world: World) -> None:
    await world.admin.put("fetched", "v", expiration=NOW + 90)
    ams = await world.location("ams")
    await ams.ns.put("written", "w", expiration_ttl=60)  # expires at NOW + 60
    assert await ams.ns.get("fetched", cache_ttl=300) == "v"
    world.advance(59.999)
    assert await ams.ns.get("written", cache_ttl=300) == "w"
    world.advance(0.001)
    assert await ams.ns.get("written", cache_ttl=300) is None
    assert (await ams.ns.get_with_metadata("written", cache_ttl=300)).value is None
    world.advance(29.999)
    assert await ams.ns.get("fetched", cache_ttl=300) == "v"
    world.advance(0.001)
    assert await ams.ns.get("fetched", cache_ttl=300) is None
    assert await ams.ns.get(["fetched", "written"], cache_ttl=300) == {
        "fetched": None,
        "written": None,
    }
    assert world.central.reads == 1  # known to be gone: no need to ask


async def test_expired_copies_are_never_served_stale(world: World) -> None:
    await world.admin.put("k", "v", expiration=NOW + 70)
    ams = await world.location("ams")
    assert await ams.ns.get("k") == "v"
    world.central.available = False
    world.advance(65)  # past cache_ttl: stale-if-error territory, but not expired yet
    assert (await ams.ns.get_with_metadata("k")).cache_status == "STALE"
    world.advance(5)
    assert await ams.ns.get("k") is None  # what the copy says now: gone (never its value)
    assert await ams.ns.get(["k"]) == {"k": None}


async def test_a_joined_fetch_is_checked_against_the_readers_clock(world: World) -> None:
    await world.admin.put("k", "v", expiration=NOW + 60)
    ams = await world.location("ams")
    assert await ams.ns.get("k") == "v"
    world.advance(50)
    world.central.gate.clear()
    assert await ams.ns.get("k") == "v"  # starts a refresh, answered as of NOW + 50
    world.advance(10)
    waiting = asyncio.create_task(ams.ns.get("k"))  # joins it at NOW + 60
    await until(lambda: ams.cache.stats.coalesced_waits == 1)
    world.central.gate.set()
    assert await waiting is None
    assert await ams.ns.get(["k"]) == {"k": None}


# -- rule 6: hot keys never stall ---------------------------------------------------------


async def test_hot_key_is_refreshed_in_the_background(world: World) -> None:
    await world.admin.put("hot", "v1")
    ams = await world.location("ams")
    assert await ams.ns.get("hot") == "v1"
    await world.admin.put("hot", "v2")
    world.advance(50)  # in the last quarter of the 60 s window
    world.central.gate.clear()  # the centre is slow: the refresh stays in flight
    seen = await asyncio.wait_for(ams.ns.get_with_metadata("hot"), 1)
    assert (seen.value, seen.cache_status) == ("v1", "UPDATING")
    seen = await asyncio.wait_for(ams.ns.get_with_metadata("hot"), 1)
    assert (seen.value, seen.cache_status) == ("v1", "UPDATING")
    assert world.central.calls["get"] == 2  # one refresh, however many reads
    world.central.gate.set()
    await settle(ams)
    world.advance(15)  # past the first copy's window, inside the refreshed one
    seen = await ams.ns.get_with_metadata("hot")
    assert (seen.value, seen.cache_status) == ("v2", "HIT")
    assert ams.cache.stats.refreshes == 1
    assert world.central.calls["get"] == 2


async def test_steady_hot_reads_are_always_hits(world: World) -> None:
    await world.admin.put("hot", "v")
    ams = await world.location("ams")
    assert (await ams.ns.get_with_metadata("hot")).cache_status == "MISS"
    statuses = set()
    for _ in range(600):  # ten minutes, one read a second
        world.advance(1)
        statuses.add((await ams.ns.get_with_metadata("hot")).cache_status)
        await asyncio.sleep(0)  # the loop runs the refresh meanwhile
    assert statuses == {"HIT", "UPDATING"}
    # flat central load: one refresh per ~45 s, whatever the read rate
    assert world.central.reads <= 1 + 600 // 45 + 1


async def test_a_read_past_the_window_joins_the_refresh(world: World) -> None:
    await world.admin.put("hot", "v1")
    ams = await world.location("ams")
    await ams.ns.get("hot")
    await world.admin.put("hot", "v2")
    world.advance(50)
    world.central.gate.clear()
    assert await ams.ns.get("hot") == "v1"  # starts the refresh
    world.advance(10)  # the old copy has lapsed: rule 3 forbids serving it
    waiting = asyncio.create_task(ams.ns.get_with_metadata("hot"))
    for _ in range(10):
        await asyncio.sleep(0)
    assert not waiting.done()
    world.central.gate.set()
    seen = await waiting
    assert (seen.value, seen.cache_status) == ("v2", "MISS")
    assert world.central.calls["get"] == 2
    assert ams.cache.stats.coalesced_waits == 1


# -- rule 7: centre down, locations up ----------------------------------------------------


async def test_stale_if_error_then_recovery(world: World) -> None:
    await world.admin.put("k", "v")
    ams = await world.location("ams", stale_if_error=300)
    assert await ams.ns.get("k") == "v"
    assert await ams.ns.get("nope") is None
    world.central.available = False
    world.advance(61)
    seen = await ams.ns.get_with_metadata("k")
    assert (seen.value, seen.cache_status) == ("v", "STALE")
    assert await ams.ns.get("nope") is None  # absence is served stale too
    reads = world.central.reads
    for _ in range(10):  # within the retry interval the centre is not even asked
        assert (await ams.ns.get_with_metadata("k")).cache_status == "STALE"
    assert world.central.reads == reads
    for call in (ams.ns.get("cold"), ams.ns.put("other", "x"), ams.ns.get(["cold", "k"])):
        with pytest.raises(KVError) as info:
            await call
        assert info.value.status == 503
    world.advance(60 + 300 - 61 - 1)  # the last second of the stale bound
    assert (await ams.ns.get_with_metadata("k")).cache_status == "STALE"
    world.advance(1)
    with pytest.raises(KVError) as info:
        await ams.ns.get("k")
    assert info.value.status == 503
    assert str(info.value).startswith("KV GET failed: 503 ")
    stats = ams.cache.stats
    assert stats.stale_serves >= 13 and stats.central_errors >= 3

    # Recovery: the first reads refill, one central fetch per key however many readers.
    world.central.available = True
    await world.admin.put("k", "v2")
    world.advance(1)
    world.central.gate.clear()
    before = world.central.calls["get"]
    readers = [asyncio.create_task(ams.ns.get("k")) for _ in range(50)]
    await until(lambda: world.central.calls["get"] == before + 1)
    for _ in range(10):
        await asyncio.sleep(0)
    assert world.central.calls["get"] == before + 1
    world.central.gate.set()
    assert await asyncio.gather(*readers) == ["v2"] * 50
    assert (await ams.ns.get_with_metadata("k")).cache_status == "HIT"


async def test_no_refresh_is_started_while_the_centre_is_down(world: World) -> None:
    await world.admin.put("hot", "v")
    ams = await world.location("ams")
    await ams.ns.get("hot")
    world.central.available = False
    world.advance(61)
    assert (await ams.ns.get_with_metadata("hot")).cache_status == "STALE"
    errors = ams.cache.stats.central_errors
    for _ in range(20):
        await ams.ns.get("hot")
    await settle(ams)
    assert ams.cache.stats.central_errors == errors


# -- coalescing -----------------------------------------------------------------------------


async def test_concurrent_cold_reads_make_one_central_request(world: World) -> None:
    await world.admin.put("k", "v")
    ams = await world.location("ams")
    world.central.gate.clear()
    readers = [asyncio.create_task(ams.ns.get_with_metadata("k")) for _ in range(100)]
    await until(lambda: world.central.calls["get"] == 1)
    for _ in range(10):
        await asyncio.sleep(0)
    world.central.gate.set()
    results = await asyncio.gather(*readers)
    assert {(r.value, r.cache_status) for r in results} == {("v", "MISS")}
    assert world.central.reads == 1
    assert ams.cache.stats.coalesced_waits == 99


async def test_a_cancelled_reader_does_not_cancel_the_others(world: World) -> None:
    await world.admin.put("k", "v")
    ams = await world.location("ams")
    world.central.gate.clear()
    first = asyncio.create_task(ams.ns.get("k"))
    second = asyncio.create_task(ams.ns.get("k"))
    await until(lambda: world.central.calls["get"] == 1)
    first.cancel()
    world.central.gate.set()
    assert await second == "v"
    assert first.cancelled()


async def test_bulk_readers_refetch_when_the_fetching_reader_is_cancelled(world: World) -> None:
    await world.admin.put("k", "v")
    ams = await world.location("ams")
    world.central.gate.clear()
    leader = asyncio.create_task(ams.ns.get("k"))
    await until(lambda: world.central.calls["get"] == 1)
    follower = asyncio.create_task(ams.ns.get(["k"]))
    await until(lambda: ams.cache.stats.coalesced_waits == 1)
    leader.cancel()
    world.central.gate.set()
    assert await follower == {"k": "v"}
    assert leader.cancelled()
    assert world.central.calls["get"] == 2


# -- bulk get -------------------------------------------------------------------------------


async def test_get_many_fetches_only_what_is_missing_in_one_request(world: World) -> None:
    for k in "abc":
        await world.admin.put(k, k.upper(), metadata={"k": k})
    ams = await world.location("ams")
    assert await ams.ns.get("a") == "A"
    result = await ams.ns.get_with_metadata(["a", "b", "c", "none", "b"])
    assert {k: (r and (r.value, r.metadata, r.cache_status)) for k, r in result.items()} == {
        "a": ("A", {"k": "a"}, "HIT"),
        "b": ("B", {"k": "b"}, "MISS"),
        "c": ("C", {"k": "c"}, "MISS"),
        "none": None,
    }
    assert (world.central.calls["get"], world.central.calls["get_many"]) == (1, 1)
    again = await ams.ns.get_with_metadata(["a", "b", "c", "none"])
    assert {r.cache_status for r in again.values() if r} == {"HIT"}
    assert world.central.reads == 2


async def test_concurrent_get_many_join_fetches_in_flight(world: World) -> None:
    for k in "abcd":
        await world.admin.put(k, k)
    ams = await world.location("ams")
    world.central.gate.clear()
    one = asyncio.create_task(ams.ns.get(["a", "b", "c"]))
    await until(lambda: world.central.calls["get_many"] == 1)
    two = asyncio.create_task(ams.ns.get(["b", "c", "d"]))
    three = asyncio.create_task(ams.ns.get("a"))
    await until(lambda: world.central.calls["get"] == 1)  # only "d" was left to fetch
    world.central.gate.set()
    assert await one == {"a": "a", "b": "b", "c": "c"}
    assert await two == {"b": "b", "c": "c", "d": "d"}
    assert await three == "a"
    assert world.central.reads == 2


# -- rule 8: list goes to the centre --------------------------------------------------------


async def test_list_always_reads_the_centre(world: World) -> None:
    ams = await world.location("ams")
    fra = await world.location("fra")
    assert (await ams.ns.list()).keys == []
    await fra.ns.put("k", "v")
    assert [k.name for k in (await ams.ns.list()).keys] == ["k"]
    assert world.central.calls["list_keys"] == 2


# -- rule 9: bounded memory -----------------------------------------------------------------


async def test_lru_eviction_within_the_byte_budget(world: World) -> None:
    size = ENTRY_OVERHEAD + len(world.ns_id) + 2 + 100  # keys "k0".."k9", 100-byte values
    ams = await world.location("ams", cache_bytes=5 * size)
    for i in range(10):
        await world.admin.put(f"k{i}", "x" * 100)
    for i in range(5):
        await ams.ns.get(f"k{i}")
    await ams.ns.get("k0")  # k0 is now the most recently used; k1 the least
    await ams.ns.get("k5")
    stats = ams.cache.stats
    assert (stats.entries, stats.evictions, stats.bytes_cached) == (5, 1, 5 * size)
    reads = world.central.reads
    assert (await ams.ns.get_with_metadata("k0")).cache_status == "HIT"
    assert (await ams.ns.get_with_metadata("k1")).cache_status == "MISS"
    assert world.central.reads == reads + 1
    for i in range(10):
        await ams.ns.get(f"k{i}")
        assert ams.cache.stats.bytes_cached <= ams.cache.budget


async def test_an_entry_larger_than_the_budget_is_served_not_kept(world: World) -> None:
    ams = await world.location("ams", cache_bytes=4096)
    await world.admin.put("big", b"x" * 5000)
    await world.admin.put("small", "s")
    assert await ams.ns.get("small") == "s"
    for _ in range(2):
        seen = await ams.ns.get_with_metadata("big", "bytes")
        assert (len(seen.value), seen.cache_status) == (5000, "MISS")
    await ams.ns.put("small", b"y" * 5000)  # a write too big to keep still replaces the copy
    assert await ams.ns.get("small") == "y" * 5000
    assert ams.cache.stats.entries == 0


# -- namespaces, stats, lifetime --------------------------------------------------------------


async def test_deleting_the_namespace_through_the_location(world: World) -> None:
    await world.admin.put("k", "v")
    ams = await world.location("ams")
    assert await ams.ns.get("k") == "v"
    await ams.client.delete_namespace(world.ns_id)
    with pytest.raises(KVError) as info:
        await ams.ns.get("k")
    assert info.value.status == 404


async def test_stats_payload(world: World) -> None:
    ams = await world.location("ams", cache_bytes=1 << 20)
    await ams.ns.get("a")
    await ams.ns.get("a")
    payload = stats_payload(ams.cache)
    assert payload["location"] == "ams"
    assert payload["budget_bytes"] == 1 << 20
    assert (payload["hits"], payload["misses"], payload["entries"]) == (1, 1, 1)
    assert payload["hit_ratio"] == 0.5
    assert set(payload) >= {
        "stale_serves",
        "refreshes",
        "coalesced_waits",
        "evictions",
        "bytes_cached",
        "central_errors",
    }
    assert stats_payload(MemoryStore()) == {"location": None}


async def test_aclose_cancels_background_refreshes(world: World) -> None:
    await world.admin.put("hot", "v")
    ams = await world.location("ams")
    await ams.ns.get("hot")
    world.advance(50)
    world.central.gate.clear()
    assert (await ams.ns.get_with_metadata("hot")).cache_status == "UPDATING"
    assert ams.cache._tasks
    await ams.cache.aclose()
    assert not ams.cache._tasks


async def test_store_level_copies_are_immutable(world: World) -> None:
    cache = LocationCache(world.central, location="x")
    value = bytearray(b"abc")
    await cache.put(world.ns_id, "k", Entry(value, None, None))  # type: ignore[arg-type]
    value[0] = ord("z")
    entry = await cache.get(world.ns_id, "k", now=NOW)
    assert entry is not None and (entry.value, entry.cache_status) == (b"abc", "HIT")


def test_options_are_checked() -> None:
    store = MemoryStore()
    for bad in ({"cache_bytes": -1}, {"refresh_ahead": 1.0}, {"stale_if_error": -5}):
        with pytest.raises(ValueError):
            LocationCache(store, location="x", **bad)
