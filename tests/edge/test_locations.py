"""Locations against a real central server on loopback.

- Two locations (`edgekv.open(url, ..., location=...)`, each on its own FakeClock) over one
  in-process central server on SQLite; what reaches the centre is counted from its access log.
- A central server in a child process (`python -m edgekv serve`), killed by PID and restarted:
  stale-if-error, 503s that come at once, durable writes, coalesced recovery.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import edgekv
from edgekv import Client, KVError, KVNamespace
from edgekv._types import Entry
from edgekv.edge.cache import LocationCache
from edgekv.edge.remote import RemoteStore
from tests.conftest import FakeClock
from tests.edge.central import CountingStore
from tests.edge.servers import AccessLog, InProcessCentral, SubprocessCentral

START = 1_700_000_000.0


@dataclass
class Site:
    name: str
    clock: FakeClock
    kv: Client
    ns: KVNamespace

    @property
    def cache(self) -> LocationCache:
        store = self.kv.store
        assert isinstance(store, LocationCache)
        return store


class Clocks:
    def __init__(self) -> None:
        self.all: list[FakeClock] = []

    def new(self) -> FakeClock:
        clock = FakeClock(START)
        self.all.append(clock)
        return clock

    def advance(self, seconds: float) -> None:
        for clock in self.all:
            clock.advance(seconds)


async def logged(log: AccessLog, name: str) -> int:
    """Requests of a kind the centre answered so far (it logs right after answering)."""
    await asyncio.sleep(0.02)
    return log[name]


@pytest.fixture
def clocks() -> Clocks:
    return Clocks()


@pytest.fixture
def central(tmp_path: Path, clocks: Clocks) -> Iterator[InProcessCentral]:
    with InProcessCentral(tmp_path / "central", clock=clocks.new()) as server:
        yield server


@pytest.fixture
async def sites(
    central: InProcessCentral, clocks: Clocks
) -> AsyncIterator[tuple[Site, Site, AccessLog]]:
    account, token = central.new_account()
    opened: list[Site] = []
    ns_id = ""
    for name in ("ams", "fra"):
        clock = clocks.new()
        kv = edgekv.open(central.url, token=token, account_id=account, location=name, clock=clock)
        if not ns_id:
            ns_id = (await kv.create_namespace("shared")).id
        await kv.connect()
        opened.append(Site(name, clock, kv, kv.namespace(ns_id)))
    yield opened[0], opened[1], central.access_log
    for site in opened:
        await site.kv.aclose()


async def test_two_locations_share_one_centre(
    sites: tuple[Site, Site, AccessLog], clocks: Clocks
) -> None:
    ams, fra, log = sites
    await ams.ns.put("k", "v1", metadata={"n": 1})
    assert await logged(log, "PUT values") == 1

    # Read-your-writes in ams: served from its own copy.
    seen = await ams.ns.get_with_metadata("k")
    assert (seen.value, seen.metadata, seen.cache_status) == ("v1", {"n": 1}, "HIT")
    assert await logged(log, "GET values") == 0

    # fra: a hundred concurrent cold reads, one central request.
    results = await asyncio.gather(*(fra.ns.get_with_metadata("k") for _ in range(100)))
    assert {(r.value, r.cache_status) for r in results} == {("v1", "MISS")}
    assert await logged(log, "GET values") == 1
    assert (await fra.ns.get_with_metadata("k")).cache_status == "HIT"

    # fra writes; ams keeps its copy at most cache_ttl (60 s), then sees the new value.
    await fra.ns.put("k", "v2")
    assert await fra.ns.get("k") == "v2"
    clocks.advance(30)
    assert await ams.ns.get("k") == "v1"
    clocks.advance(30)
    assert await ams.ns.get("k") == "v2"
    assert await logged(log, "GET values") == 2

    # Negative lookups are cached: a storm for a missing key reaches the centre once.
    assert await asyncio.gather(*(ams.ns.get("nope") for _ in range(50))) == [None] * 50
    assert await logged(log, "GET values") == 3

    # Bulk get: hits from the cache, the rest in one bulk request.
    await ams.ns.put_many([("a", "A"), ("b", "B")])
    assert await logged(log, "PUT bulk") == 1
    assert await fra.ns.get(["k", "a", "b", "nope"]) == {
        "k": "v2",
        "a": "A",
        "b": "B",
        "nope": None,
    }
    assert await logged(log, "POST bulk/get") == 1

    # List always asks the centre, and so sees every write at once.
    await ams.ns.delete("a")
    assert [k.name for k in (await fra.ns.list()).keys] == ["b", "k"]
    assert await logged(log, "GET keys") == 1

    # Exact expiration: both locations stop serving at the second, without asking anyone.
    await ams.ns.put("e", "x", expiration_ttl=60)
    assert await fra.ns.get("e", cache_ttl=300) == "x"
    before = await logged(log, "GET values")
    clocks.advance(59.999)
    assert await fra.ns.get("e", cache_ttl=300) == "x"
    assert await ams.ns.get("e", cache_ttl=300) == "x"
    clocks.advance(0.001)
    assert await fra.ns.get("e", cache_ttl=300) is None
    assert await ams.ns.get("e", cache_ttl=300) is None
    assert await logged(log, "GET values") == before

    for site in (ams, fra):
        stats = site.cache.stats.to_dict()
        assert stats["location"] == site.name and stats["central_errors"] == 0


async def test_hot_key_central_load_is_flat(
    sites: tuple[Site, Site, AccessLog], clocks: Clocks
) -> None:
    ams, fra, log = sites
    await ams.ns.put("hot", "v")
    statuses: set[str | None] = set()
    for _ in range(300):  # five minutes; every second 20 reads in each location
        clocks.advance(1)
        for site in (ams, fra):
            for result in await asyncio.gather(
                *(site.ns.get_with_metadata("hot") for _ in range(20))
            ):
                statuses.add(result.cache_status)
        await asyncio.sleep(0.001)  # let background refreshes run
    assert statuses <= {"HIT", "UPDATING", "MISS"}
    # 12,000 reads; the centre saw about one refresh per location per 45 s
    assert await logged(log, "GET values") <= 2 * (300 // 45 + 2)
    assert ams.cache.stats.refreshes >= 5


# -- the centre killed and restarted -------------------------------------------------------


async def test_centre_killed_then_restarted(tmp_path: Path) -> None:
    with SubprocessCentral(tmp_path / "central") as centre:
        clock = FakeClock(time.time())  # the centre runs on real time
        remote = RemoteStore(centre.url, token=centre.token, account_id=centre.account_id)
        counted = CountingStore(remote)
        cache = LocationCache(counted, location="ams", clock=clock, stale_if_error=300)
        async with Client(cache, clock=clock, account_id=centre.account_id) as kv:
            ns = await kv.create_namespace("t")
            loc = kv.namespace(ns.id)
            await loc.put("written", "w")
            admin = RemoteStore(centre.url, token=centre.token, account_id=centre.account_id)
            await admin.put(ns.id, "fetched", Entry(b"f"))
            assert await loc.get("fetched") == "f"
            assert await loc.get("absent") is None

            centre.kill()
            clock.advance(61)
            started = time.monotonic()
            for key, value in (("fetched", "f"), ("written", "w"), ("absent", None)):
                seen = await loc.get_with_metadata(key)
                assert (seen.value, seen.cache_status) == (value, "STALE" if value else None)
            for call in (loc.get("cold"), loc.put("k", "v"), loc.delete("written")):
                with pytest.raises(KVError) as info:
                    await call
                assert info.value.status == 503
            assert time.monotonic() - started < 5  # refused at once, never a hang
            assert cache.stats.central_errors >= 1

            centre.start()  # same data directory, same port
            clock.advance(1)  # past the retry interval
            # Acknowledged writes survived the kill.
            assert (await admin.get(ns.id, "written", now=int(clock()))) is not None
            await admin.put(ns.id, "fetched", Entry(b"f2"))
            reads = counted.reads
            results = await asyncio.gather(*(loc.get_with_metadata("fetched") for _ in range(30)))
            assert {(r.value, r.cache_status) for r in results} == {("f2", "MISS")}
            assert counted.reads == reads + 1  # recovery refills are coalesced
            await loc.put("k", "after")
            assert (await loc.get_with_metadata("k")).cache_status == "HIT"
            await admin.aclose()
