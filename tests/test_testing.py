"""`edgekv.testing.Simulation`: several locations in one process, each on its own clock, over an
in-process centre or a real central server, with the feed delivered by hand. Also runs the
worked example of docs/locations.md as written."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgekv.store.memory import MemoryStore
from edgekv.testing import SimClock, SimLocation, Simulation
from tests.edge.servers import InProcessCentral

DOC = Path(__file__).resolve().parents[1] / "docs" / "locations.md"
DAY = 86400


async def test_tokyo_two_seconds_after_a_write_in_amsterdam() -> None:
    async with Simulation() as sim:
        ns_id = (await sim.create_namespace("app")).id
        ams = await sim.location("ams")
        tyo = await sim.location("tyo", feed_delay=1.5)
        at_ams, at_tyo = ams.namespace(ns_id), tyo.namespace(ns_id)
        await at_ams.put("greeting", "hello")
        assert await at_tyo.get("greeting", cache_ttl=DAY) == "hello"
        await at_ams.put("greeting", "bonjour")
        assert await at_ams.get("greeting") == "bonjour"  # read-your-writes, at once
        await sim.advance(1)
        assert await at_tyo.get("greeting", cache_ttl=DAY) == "hello"  # not delivered yet
        assert await sim.advance(1) == 1
        seen = await at_tyo.get_with_metadata("greeting", cache_ttl=DAY)
        assert (seen.value, seen.cache_status) == ("bonjour", "HIT")  # re-read in the background
        assert tyo.stats.push_refreshes == 1 and tyo.stats.misses == 1


async def test_a_write_before_advance_is_stamped_before_it() -> None:
    async with Simulation() as sim:
        ns_id = (await sim.create_namespace("app")).id
        tyo = await sim.location("tyo", feed_delay=2)
        assert await tyo.namespace(ns_id).get("k", cache_ttl=DAY) is None
        await sim.namespace(ns_id).put("k", "v")  # "elsewhere": REST, wrangler
        await sim.advance(2)  # seen at t, delivered at t + 2
        assert await tyo.namespace(ns_id).get("k", cache_ttl=DAY) == "v"


async def test_without_push_only_cache_ttl_bounds_staleness() -> None:
    async with Simulation() as sim:
        ns_id = (await sim.create_namespace("app")).id
        ams, tyo = await sim.location("ams"), await sim.location("tyo", push=False)
        await ams.namespace(ns_id).put("k", "v1")
        assert await tyo.namespace(ns_id).get("k", cache_ttl=300) == "v1"
        await ams.namespace(ns_id).put("k", "v2")
        await sim.advance(299)
        assert await tyo.namespace(ns_id).get("k", cache_ttl=300) == "v1"
        await sim.advance(1)
        assert await tyo.namespace(ns_id).get("k", cache_ttl=300) == "v2"
        assert tyo.stats.push is False and tyo.stats.feed_lag_seconds is None


async def test_a_location_cut_off_the_feed_keeps_the_contract_and_catches_up() -> None:
    async with Simulation() as sim:
        ns_id = (await sim.create_namespace("app")).id
        ams, tyo = await sim.location("ams"), await sim.location("tyo")
        for key in ("a", "b"):
            await ams.namespace(ns_id).put(key, "1")
            assert await tyo.namespace(ns_id).get(key, cache_ttl=60) == "1"
        tyo.feed_down = True
        await ams.namespace(ns_id).put("a", "2")
        await sim.advance(30)
        assert await tyo.namespace(ns_id).get("a", cache_ttl=60) == "1"
        assert tyo.stats.feed_disconnected == 1 and tyo.stats.feed_lag_seconds == 30
        await sim.advance(30)
        assert await tyo.namespace(ns_id).get("a", cache_ttl=60) == "2"  # the cache_ttl bound
        await ams.namespace(ns_id).put("b", "2")
        tyo.feed_down = False
        await sim.settle()
        assert await tyo.namespace(ns_id).get("b", cache_ttl=60) == "2"  # from its cursor
        assert tyo.stats.feed_reconnects == 1 and tyo.stats.feed_resyncs == 0


async def test_clocks_are_per_location() -> None:
    async with Simulation(start=1_800_000_000) as sim:
        ns_id = (await sim.create_namespace("app")).id
        fast = await sim.location("fast", clock_offset=30)
        assert isinstance(fast, SimLocation) and isinstance(fast.clock, SimClock)
        assert fast.clock() == 1_800_000_030 and sim.clock() == 1_800_000_000
        await sim.namespace(ns_id).put("k", "v", expiration=1_800_000_060)
        assert await fast.namespace(ns_id).get("k") == "v"
        await sim.advance(29)
        assert await fast.namespace(ns_id).get("k") == "v"  # its clock says 59
        await sim.advance(1)
        assert await fast.namespace(ns_id).get("k") is None  # its clock says 60: expired
        assert await sim.namespace(ns_id).get("k") == "v"


async def test_history_lost_at_the_centre_revalidates(tmp_path: Path) -> None:
    async with Simulation(MemoryStore(feed_history=2)) as sim:
        ns_id = (await sim.create_namespace("app")).id
        tyo = await sim.location("tyo", feed_delay=10)
        assert await tyo.namespace(ns_id).get("k", cache_ttl=DAY) is None
        for i in range(6):
            await sim.namespace(ns_id).put("k", str(i))
            await sim.advance(1)
        await sim.advance(10)
        assert await tyo.namespace(ns_id).get("k", cache_ttl=DAY) == "5"
        assert tyo.stats.feed_resyncs >= 1  # 10 s late over a 2-change history: often


@pytest.fixture
def central(tmp_path: Path) -> Iterator[InProcessCentral]:
    with InProcessCentral(tmp_path / "central") as server:
        yield server


async def test_over_a_real_central_server(central: InProcessCentral) -> None:
    account, token = central.new_account()
    async with Simulation(central.url, token=token, account_id=account) as sim:
        ns_id = (await sim.create_namespace("app")).id
        ams = await sim.location("ams")
        tyo = await sim.location("tyo", feed_delay=0.5)
        await ams.namespace(ns_id).put("k", "v1")
        assert await tyo.namespace(ns_id).get("k", cache_ttl=DAY) == "v1"
        await ams.namespace(ns_id).put("k", "v2")
        await sim.advance(0.4)
        assert await tyo.namespace(ns_id).get("k", cache_ttl=DAY) == "v1"
        await sim.advance(0.1)
        assert await tyo.namespace(ns_id).get("k", cache_ttl=DAY) == "v2"
    assert central.access_log["GET changes"] >= 2


async def test_the_documented_example_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    example = next(b for b in blocks if "from edgekv.testing import Simulation" in b)
    body = textwrap.indent(example, "    ")
    namespace: dict[str, object] = {}
    exec(compile(f"async def _example():\n{body}", "docs/locations.md", "exec"), namespace)
    await namespace["_example"]()  # type: ignore[operator]


async def test_a_location_that_started_without_the_feed_revalidates_when_it_comes() -> None:
    """The feed unreachable when the first copy was made: no head cursor could be taken, so
    changes between that fetch and the first head are unknown; the copies are revalidated."""
    async with Simulation() as sim:
        ns_id = (await sim.create_namespace("app")).id
        await sim.namespace(ns_id).put("k", "v1")
        tyo = await sim.location("tyo")
        tyo.feed_down = True
        assert await tyo.namespace(ns_id).get("k", cache_ttl=DAY) == "v1"  # reads go on
        assert tyo.stats.feed_errors == 1
        await sim.namespace(ns_id).put("k", "v2")
        await sim.advance(1)  # the change is older than any head tyo will get
        tyo.feed_down = False
        await sim.settle()
        assert tyo.stats.feed_resyncs == 1
        assert await tyo.namespace(ns_id).get("k", cache_ttl=DAY) == "v2"
