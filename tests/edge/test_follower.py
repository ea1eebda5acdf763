"""Pushed invalidation: a `LocationCache` following a real store's change feed (the centre of
`world`, a `MemoryStore`), in manual mode so each delivery is a step of the test
(`await follower.pump()`), with fake clocks. What reaches the centre is counted."""

from __future__ import annotations

import asyncio

import pytest

from edgekv._types import Entry
from edgekv.edge.cache import LocationCache
from edgekv.edge.follower import Follower
from edgekv.store.memory import MemoryStore
from tests.conftest import FakeClock, open_client
from tests.edge.central import CountingStore
from tests.edge.conftest import Location, World
from tests.edge.test_cache import until

DAY = 86400


def follower(loc: Location) -> Follower:
    assert loc.cache.follower is not None
    return loc.cache.follower


async def pump(*locations: Location) -> int:
    applied = 0
    for loc in locations:
        applied += await follower(loc).pump()
        await loc.cache.settle()
    return applied


async def test_a_write_elsewhere_reaches_a_hot_copy_without_a_miss(world: World) -> None:
    await world.admin.put("k", "v1")
    ams = await world.location("ams", push=True)
    assert await ams.ns.get("k", cache_ttl=DAY) == "v1"
    await world.admin.put("k", "v2", metadata={"n": 2})
    assert await pump(ams) == 1
    seen = await ams.ns.get_with_metadata("k", cache_ttl=DAY)
    assert (seen.value, seen.metadata, seen.cache_status) == ("v2", {"n": 2}, "HIT")
    stats = ams.cache.stats
    assert (stats.push_refreshes, stats.misses, stats.feed_changes) == (1, 1, 1)
    assert world.central.reads == 2  # the first read and the re-read


async def test_a_hot_key_is_served_while_it_is_re_read(world: World) -> None:
    await world.admin.put("hot", "old")
    ams = await world.location("ams", push=True)
    assert await ams.ns.get("hot", cache_ttl=DAY) == "old"
    await world.admin.put("hot", "new")
    world.central.gate.clear()  # the re-read reaches the centre, its answer is held
    await follower(ams).pump()
    results = await asyncio.gather(
        *(ams.ns.get_with_metadata("hot", cache_ttl=DAY) for _ in range(100))
    )
    assert {(r.value, r.cache_status) for r in results} == {("old", "UPDATING")}
    world.central.gate.set()
    await ams.cache.settle()
    assert (await ams.ns.get_with_metadata("hot", cache_ttl=DAY)).value == "new"
    assert world.central.reads == 2 and ams.cache.stats.misses == 1


async def test_a_cold_copy_is_dropped(world: World) -> None:
    await world.admin.put("k", "v1")
    ams = await world.location("ams", push=True)
    assert await ams.ns.get("k", cache_ttl=DAY) == "v1"
    world.advance(ams.cache.hot_window)  # nobody read it since: not hot any more
    await world.admin.put("k", "v2")
    await pump(ams)
    assert ams.cache.stats.invalidations == 1 and world.central.reads == 1
    seen = await ams.ns.get_with_metadata("k", cache_ttl=DAY)
    assert (seen.value, seen.cache_status) == ("v2", "MISS")


async def test_negative_lookups_learn_of_the_new_key(world: World) -> None:
    ams = await world.location("ams", push=True)
    assert await ams.ns.get("nope", cache_ttl=DAY) is None
    assert await ams.ns.get(["a", "b"], cache_ttl=DAY) == {"a": None, "b": None}
    await world.admin.put("nope", "here")
    await world.admin.put_many([{"key": "a", "value": "A"}])
    await pump(ams)
    assert await ams.ns.get("nope", cache_ttl=DAY) == "here"
    assert await ams.ns.get(["a", "b"], cache_ttl=DAY) == {"a": "A", "b": None}


async def test_deletes_elsewhere_are_seen(world: World) -> None:
    await world.admin.put("k", "v")
    ams = await world.location("ams", push=True)
    assert await ams.ns.get("k", cache_ttl=DAY) == "v"
    await world.admin.delete("k")
    await pump(ams)
    assert await ams.ns.get("k", cache_ttl=DAY) is None
    await world.admin.delete("k")  # deleting a missing key is no change
    assert await pump(ams) == 0


async def test_this_locations_own_writes_cost_nothing_more(world: World) -> None:
    ams = await world.location("ams", push=True)
    await ams.ns.put("k", "mine")
    await ams.ns.delete("gone")
    await pump(ams)
    assert (await ams.ns.get_with_metadata("k", cache_ttl=DAY)).cache_status == "HIT"
    assert await ams.ns.get("gone", cache_ttl=DAY) is None
    assert world.central.reads == 0
    assert ams.cache.stats.invalidations == 0 and ams.cache.stats.push_refreshes == 0


async def test_a_fetch_in_flight_when_its_key_changes_is_disowned(world: World) -> None:
    await world.admin.put("k", "old")
    ams = await world.location("ams", push=True)
    await ams.ns.get("other")  # the namespace is followed
    world.central.gate.clear()  # the fetch reads "old" at the centre, its answer is held
    reader = asyncio.create_task(ams.ns.get("k", cache_ttl=DAY))
    await until(lambda: world.central.calls["get"] == 2)
    await world.admin.put("k", "new")
    await follower(ams).pump()
    world.central.gate.set()
    assert await reader == "old"  # began before the change: either answer is right
    assert await ams.ns.get("k", cache_ttl=DAY) == "new"  # but "old" was never kept


async def test_the_head_is_taken_before_the_first_fetch(world: World) -> None:
    """The start race: a change that commits after the first fetch read the centre, but before
    anything was followed, must still reach the copy."""
    await world.admin.put("k", "old")
    ams = await world.location("ams", push=True)
    world.central.gate.clear()
    reader = asyncio.create_task(ams.ns.get("k", cache_ttl=DAY))
    await until(lambda: world.central.calls["get"] == 1)  # head taken, the fetch read "old"
    await world.admin.put("k", "new")  # commits before the fetch fills the cache
    world.central.gate.set()
    assert await reader == "old"
    assert follower(ams).namespaces == [world.ns_id]
    await pump(ams)
    assert await ams.ns.get("k", cache_ttl=DAY) == "new"


async def test_a_write_here_is_followed_from_before_it(world: World) -> None:
    ams = await world.location("ams", push=True)
    world.central.write_gate.clear()
    writer = asyncio.create_task(ams.ns.put("k", "mine"))
    await until(lambda: world.central.calls["put"] == 1)
    world.central.write_gate.set()
    await writer
    await world.admin.put("k", "theirs")
    await pump(ams)
    assert await ams.ns.get("k", cache_ttl=DAY) == "theirs"


async def test_history_gone_revalidates_the_namespace(world: World) -> None:
    memory = MemoryStore(feed_history=3)
    clock = FakeClock(world.clock.now)
    admin = await open_client(memory, clock)
    ns = await admin.create_namespace("small-history")
    for key in ("hot", "cold"):
        await admin.namespace(ns.id).put(key, "v1")
    central = CountingStore(memory)
    cache = LocationCache(
        central, location="ams", clock=clock, feed=memory, manual_feed=True, hot_window=10
    )
    kv = await open_client(cache, clock)
    loc = kv.namespace(ns.id)
    try:
        assert await loc.get("cold", cache_ttl=DAY) == "v1"
        clock.advance(20)
        assert await loc.get("hot", cache_ttl=DAY) == "v1"
        for i in range(7):  # more than twice the history: the location's cursor is gone
            await admin.namespace(ns.id).put("other", str(i))
        await admin.namespace(ns.id).put("hot", "v2")
        await admin.namespace(ns.id).put("cold", "v2")
        assert cache.follower is not None
        await cache.follower.pump()
        await cache.settle()
        assert cache.stats.feed_resyncs == 1
        assert cache.stats.push_refreshes == 1  # the hot key, re-read
        assert cache.stats.invalidations == 1  # the cold one, dropped
        seen = await loc.get_with_metadata("hot", cache_ttl=DAY)
        assert (seen.value, seen.cache_status) == ("v2", "HIT")
        assert await loc.get("cold", cache_ttl=DAY) == "v2"
        await admin.namespace(ns.id).put("hot", "v3")  # following goes on from the new head
        await cache.follower.pump()
        await cache.settle()
        assert await loc.get("hot", cache_ttl=DAY) == "v3"
    finally:
        await kv.aclose()
        await admin.aclose()


async def test_a_namespace_with_nothing_cached_is_no_longer_followed(world: World) -> None:
    ams = await world.location("ams", push=True, cache_bytes=2000)
    other = await world.admin_client.create_namespace("other")
    assert await ams.ns.get("k") is None
    assert follower(ams).namespaces == [world.ns_id]
    for i in range(20):  # evicts every copy of the first namespace
        await ams.client.namespace(other.id).get(f"k{i}")
    await pump(ams)  # the first pump after its last copy went still follows it
    await pump(ams)
    assert follower(ams).namespaces == [other.id]
    assert ams.cache.stats.feed_namespaces == 1


async def test_a_deleted_namespace_ends_following(world: World) -> None:
    ams = await world.location("ams", push=True)
    assert await ams.ns.get("k") is None
    await world.admin_client.delete_namespace(world.ns_id)
    await pump(ams)
    assert follower(ams).namespaces == [] and ams.cache.stats.entries == 0


async def test_counters(world: World) -> None:
    ams = await world.location("ams", push=True)
    stats = ams.cache.stats
    assert stats.push is True and stats.feed_lag_seconds == 0
    await ams.ns.get("k", cache_ttl=DAY)
    await world.admin.put("k", "v")
    await pump(ams)
    out = stats.to_dict()
    assert out["feed_namespaces"] == 1 and out["feed_changes"] == 1
    assert out["feed_polls"] >= 2 and out["feed_errors"] == 0
    assert out["feed_lag_seconds"] == 0 and out["feed_disconnected"] == 0
    plain = await world.location("fra")
    assert plain.cache.stats.to_dict()["push"] is False
    assert plain.cache.stats.feed_lag_seconds is None


async def test_a_store_entry_given_directly_is_dropped_on_change(world: World) -> None:
    """Changes arriving for keys a bulk write of this location left uncached are no-ops."""
    ams = await world.location("ams", push=True)
    await ams.ns.get("x")
    await ams.ns.put_many([("a", "1"), ("b", "2")])
    await world.central.inner.put(world.ns_id, "a", Entry(b"3"))
    await pump(ams)
    assert await ams.ns.get("a") == "3"


@pytest.mark.parametrize("hot", [True, False])
async def test_bulk_reads_see_changes(world: World, hot: bool) -> None:
    await world.admin.put_many([{"key": "a", "value": "1"}, {"key": "b", "value": "1"}])
    ams = await world.location("ams", push=True)
    assert await ams.ns.get(["a", "b"], cache_ttl=DAY) == {"a": "1", "b": "1"}
    if not hot:
        world.advance(ams.cache.hot_window)
    await world.admin.put("a", "2")
    await pump(ams)
    assert await ams.ns.get(["a", "b"], cache_ttl=DAY) == {"a": "2", "b": "1"}


async def test_a_changed_copy_that_cannot_be_re_read_is_never_served_as_fresh(
    world: World,
) -> None:
    await world.admin.put("k", "v1")
    ams = await world.location("ams", push=True)
    assert await ams.ns.get("k", cache_ttl=DAY) == "v1"
    await world.admin.put("k", "v2")
    world.central.available = False  # the re-read fails
    await pump(ams)
    seen = await ams.ns.get_with_metadata("k", cache_ttl=DAY)
    assert (seen.value, seen.cache_status) == ("v1", "STALE")  # rule 7, said so
    world.central.available = True
    world.advance(1)  # past the retry interval
    seen = await ams.ns.get_with_metadata("k", cache_ttl=DAY)
    assert (seen.value, seen.cache_status) == ("v2", "MISS")


async def test_retries_back_off_exponentially_with_jitter(world: World) -> None:
    ams = await world.location("ams")
    delays = {}
    for draw in (0.0, 1.0):
        follow = Follower(ams.cache, world.memory, backoff=(0.1, 5.0), rng=lambda d=draw: d)
        delays[draw] = [round(follow._delay(n), 3) for n in range(1, 9)]
    assert delays[1.0] == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]  # doubling, capped
    assert delays[0.0] == [d / 2 for d in delays[1.0]]  # jitter: between half and all of it


async def test_a_fetch_that_already_read_the_change_is_kept(world: World) -> None:
    ams = await world.location("ams", push=True)
    await ams.ns.get("other")  # the namespace is followed
    await world.admin.put("k", "new")
    world.central.gate.clear()  # the fetch reads "new", its answer is held...
    reader = asyncio.create_task(ams.ns.get("k", cache_ttl=DAY))
    await until(lambda: world.central.calls["get"] == 2)
    await follower(ams).pump()  # ...while the change that wrote "new" arrives
    world.central.gate.set()
    assert await reader == "new"
    seen = await ams.ns.get_with_metadata("k", cache_ttl=DAY)
    assert (seen.value, seen.cache_status) == ("new", "HIT")  # kept: no second fetch
    assert world.central.calls["get"] == 2


async def test_a_disowned_fetch_never_lands_over_a_write_here(world: World) -> None:
    ams = await world.location("ams", push=True)
    await ams.ns.get("other")
    await world.admin.put("k", "theirs")
    world.central.gate.clear()
    reader = asyncio.create_task(ams.ns.get("k", cache_ttl=DAY))
    await until(lambda: world.central.calls["get"] == 2)
    await follower(ams).pump()  # disowns the fetch (which read "theirs")
    await ams.ns.put("k", "mine")  # acknowledged before that fetch answers
    world.central.gate.set()
    assert await reader == "theirs"
    assert await ams.ns.get("k", cache_ttl=DAY) == "mine"  # read-your-writes


async def test_metrics_carry_the_feed(world: World) -> None:
    from edgekv.edge.stats import cache_metrics

    ams = await world.location("ams", push=True)
    await ams.ns.get("k", cache_ttl=DAY)
    await world.admin.put("k", "v")
    await pump(ams)
    lines = list(cache_metrics(ams.cache))
    assert 'edgekv_cache_requests_total{result="miss"} 1' in lines
    assert "# TYPE edgekv_feed_lag_seconds gauge" in lines
    assert "edgekv_feed_lag_seconds 0.0" in lines
    assert "edgekv_feed_changes_total 1" in lines and "edgekv_cache_push_refreshes_total 1" in lines
    plain = await world.location("fra")
    assert not any(line.startswith("edgekv_feed") for line in cache_metrics(plain.cache))
