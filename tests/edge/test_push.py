"""Pushed invalidation against real central servers on loopback, on real time: locations
(`edgekv.open(url, …, location=…)`, push on by default) see writes made elsewhere within a
second whatever their `cache_ttl`; the feed cut by a relay (the TTL contract holds, counters
say so, following resumes from the cursor); history gone (410, a small `--feed-history`); the
centre killed with SIGKILL and started again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

import edgekv
from edgekv import Client, KVNamespace
from edgekv._types import Entry
from edgekv.edge.cache import LocationCache
from edgekv.edge.remote import RemoteStore
from edgekv.store.memory import MemoryStore
from tests.conftest import FakeClock
from tests.edge.proxy import Relay
from tests.edge.servers import InProcessCentral, SubprocessCentral

DAY = 86400
FAST = {"feed_backoff": (0.05, 0.5)}  # retries within half a second: short tests


async def eventually(
    check: Callable[[], Awaitable[bool]], within: float = 5.0, message: str = ""
) -> float:
    """Poll `check` every 10 ms until it is true; the seconds it took."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > within:
            raise AssertionError(message or f"not true within {within}s")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


def sees(ns: KVNamespace, key: str, value: str | None) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await ns.get(key, cache_ttl=DAY) == value

    return check


@pytest.fixture
def central(tmp_path: Path) -> Iterator[InProcessCentral]:
    with InProcessCentral(tmp_path / "central") as server:
        yield server


@pytest.fixture
async def account(central: InProcessCentral) -> AsyncIterator[tuple[str, str, Client, str]]:
    account, token = central.new_account()
    admin = edgekv.open(central.url, token=token, account_id=account)
    ns_id = (await admin.create_namespace("push")).id
    yield account, token, admin, ns_id
    await admin.aclose()


async def test_every_location_sees_a_write_within_a_second(
    central: InProcessCentral, account: tuple[str, str, Client, str]
) -> None:
    account_id, token, admin, ns_id = account
    sites = [
        edgekv.open(central.url, token=token, account_id=account_id, location=name)
        for name in ("ams", "fra", "tyo")
    ]
    try:
        ams, fra, tyo = (site.namespace(ns_id) for site in sites)
        await ams.put("k", "v1")
        for ns in (fra, tyo):
            assert await ns.get("k", cache_ttl=DAY) == "v1"
            assert await ns.get("new", cache_ttl=DAY) is None
        await ams.put("k", "v2")  # a location's write
        await admin.namespace(ns_id).put("new", "here")  # a write straight to the centre
        for ns in (fra, tyo):
            assert await eventually(sees(ns, "k", "v2"), 1.0) < 1.0
            assert await eventually(sees(ns, "new", "here"), 1.0) < 1.0
        await admin.namespace(ns_id).delete("k")
        for ns in (ams, fra, tyo):
            await eventually(sees(ns, "k", None), 1.0)
        for site in sites:
            stats = site.store.stats.to_dict()  # type: ignore[attr-defined]
            assert stats["push"] is True and stats["feed_namespaces"] == 1
            assert stats["feed_errors"] == 0 and stats["feed_lag_seconds"] == 0
        # Long polls: one per location and namespace, however many reads.
        assert central.access_log["GET changes"] < 60
    finally:
        for site in sites:
            await site.aclose()


async def test_push_off_keeps_copies_for_their_cache_ttl(
    central: InProcessCentral, account: tuple[str, str, Client, str]
) -> None:
    account_id, token, admin, ns_id = account
    site = edgekv.open(central.url, token=token, account_id=account_id, location="ams", push=False)
    try:
        ns = site.namespace(ns_id)
        await admin.namespace(ns_id).put("k", "v1")
        assert await ns.get("k", cache_ttl=DAY) == "v1"
        await admin.namespace(ns_id).put("k", "v2")
        await asyncio.sleep(0.5)
        assert await ns.get("k", cache_ttl=DAY) == "v1"
        assert site.store.stats.to_dict()["push"] is False  # type: ignore[attr-defined]
        assert central.access_log["GET changes"] == 0
    finally:
        await site.aclose()


async def test_the_feed_cut_off_keeps_the_ttl_contract_then_resumes(
    central: InProcessCentral, account: tuple[str, str, Client, str]
) -> None:
    """Values reachable, the feed not (a relay in its path is cut): copies keep exactly the
    bound of rule 3, the counters say so, and the feed resumes from its cursor."""
    account_id, token, admin, ns_id = account
    centre = admin.namespace(ns_id)
    async with Relay(central.url) as relay:
        clock = FakeClock(time.time())
        cache = LocationCache(
            RemoteStore(central.url, token=token, account_id=account_id),
            location="ams",
            clock=clock,
            feed=RemoteStore(relay.url, token=token, account_id=account_id),
            **FAST,
        )
        async with Client(cache, account_id=account_id, clock=clock) as kv:
            ns = kv.namespace(ns_id)
            await centre.put("k", "v1")
            await centre.put("during", "d1")
            assert await ns.get("k") == "v1"
            assert await ns.get("during", cache_ttl=DAY) == "d1"
            relay.cut()
            await centre.put("k", "v2")
            await centre.put("during", "d2")
            await asyncio.sleep(0.3)
            clock.advance(59)
            assert await ns.get("k") == "v1"  # within cache_ttl: the old copy is allowed
            stats = cache.stats
            assert stats.feed_disconnected == 1 and stats.feed_errors >= 1
            assert stats.feed_lag_seconds is not None and stats.feed_lag_seconds >= 59
            clock.advance(1)
            assert await ns.get("k") == "v2"  # at cache_ttl: the centre's value, never later

            relay.restore()
            await eventually(sees(ns, "during", "d2"), 3.0)  # from the cursor: not missed
            assert stats.feed_reconnects == 1 and stats.feed_resyncs == 0
            assert stats.feed_disconnected == 0 and stats.feed_lag_seconds == 0
            await centre.put("k", "v3")
            assert await eventually(sees(ns, "k", "v3"), 1.0) < 1.0


async def history_gone(url: str, token: str, account_id: str) -> None:
    """A location cut off the feed while more than twice the centre's history is written, then
    reconnected: the 410 makes it revalidate its copies, and it follows on from a new head."""
    admin = RemoteStore(url, token=token, account_id=account_id)
    async with Relay(url) as relay:
        cache = LocationCache(
            RemoteStore(url, token=token, account_id=account_id),
            location="ams",
            feed=RemoteStore(relay.url, token=token, account_id=account_id),
            feed_wait=2.0,  # the server ends a poll its client left within 2 s: quick teardown
            **FAST,
        )
        async with Client(cache, account_id=account_id) as kv:
            ns_id = (await kv.create_namespace("small-history")).id
            ns = kv.namespace(ns_id)
            await admin.put(ns_id, "k", Entry(b"v1"))
            assert await ns.get("k", cache_ttl=DAY) == "v1"
            relay.cut()
            for i in range(12):  # more than twice the kept history
                await admin.put(ns_id, f"other{i}", Entry(b"x"))
            await admin.put(ns_id, "k", Entry(b"v2"))
            await asyncio.sleep(0.2)
            relay.restore()
            await eventually(sees(ns, "k", "v2"), 3.0)
            assert cache.stats.feed_resyncs == 1
            await admin.put(ns_id, "k", Entry(b"v3"))  # following goes on from the new head
            await eventually(sees(ns, "k", "v3"), 1.0)
    await admin.aclose()


async def test_history_gone_revalidates_copies() -> None:
    """On a central server whose store keeps 5 changes per namespace."""
    with InProcessCentral(MemoryStore(feed_history=5)) as server:
        account_id, token = server.new_account()
        await history_gone(server.url, token, account_id)


async def test_history_gone_on_edgekv_serve_feed_history(tmp_path: Path) -> None:
    with SubprocessCentral(tmp_path / "central", "--feed-history", "5") as server:
        await history_gone(server.url, server.token, server.account_id)


async def test_pushing_resumes_after_the_centre_is_killed_and_restarted(tmp_path: Path) -> None:
    with SubprocessCentral(tmp_path / "central") as server:
        admin = RemoteStore(server.url, token=server.token, account_id=server.account_id)
        kv = edgekv.open(
            server.url,
            token=server.token,
            account_id=server.account_id,
            location="ams",
            cache_options=FAST,
        )
        try:
            ns_id = (await kv.create_namespace("restart")).id
            ns = kv.namespace(ns_id)
            await admin.put(ns_id, "k", Entry(b"v1"))
            assert await ns.get("k", cache_ttl=DAY) == "v1"
            server.kill()  # SIGKILL: connections reset, nothing flushed
            await asyncio.sleep(0.3)
            assert await ns.get("k", cache_ttl=DAY) == "v1"  # served from the cache meanwhile
            stats = kv.store.stats  # type: ignore[attr-defined]
            assert stats.feed_disconnected == 1
            server.start()  # same port, same data
            await admin.put(ns_id, "k", Entry(b"v2"))
            took = await eventually(sees(ns, "k", "v2"), 5.0, "pushing did not resume")
            assert stats.feed_reconnects >= 1 and stats.feed_resyncs == 0
            await admin.put(ns_id, "k", Entry(b"v3"))
            assert await eventually(sees(ns, "k", "v3"), 1.0) < 1.0, took
        finally:
            await kv.aclose()
            await admin.aclose()
