"""A multi-location simulator for tests: N locations in one process, each with its own clock,
over one centre (an in-process store, or a real central server), with the change feed driven
by hand so that a test of "what does Tokyo see 2 s after a write in Amsterdam" never sleeps.

    from edgekv.testing import Simulation

    async with Simulation() as sim:                     # an in-memory centre
        ns_id = (await sim.create_namespace("app")).id
        ams, tyo = await sim.location("ams"), await sim.location("tyo", feed_delay=0.5)
        await ams.namespace(ns_id).put("k", "v1")
        assert await tyo.namespace(ns_id).get("k", cache_ttl=86400) == "v1"
        await ams.namespace(ns_id).put("k", "v2")
        await sim.advance(0.4)                          # not delivered to tyo yet
        assert await tyo.namespace(ns_id).get("k", cache_ttl=86400) == "v1"
        await sim.advance(0.1)                          # due now: dropped or re-read
        assert await tyo.namespace(ns_id).get("k", cache_ttl=86400) == "v2"

Each location is a real `LocationCache` (the one `edgekv edge` runs) whose follower runs in
manual mode: nothing happens in the background. The simulation reads the centre's feed and
stamps each change with the simulated time at which it first saw it (`advance` looks before it
moves the clocks, so a write made before `advance(2)` is stamped with the time before); a
location receives a change once its `feed_delay` has passed since that stamp, when the
simulation is `settle`d (which `advance` does). `loc.feed_down = True` cuts one location off
the feed (its copies then keep only the `cache_ttl` bound, and it resumes from its cursor when
reconnected); `push=False` makes a location that never follows the feed.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from edgekv._client import Client
from edgekv._exceptions import HistoryGone, StoreUnavailable
from edgekv._models import Change
from edgekv._namespace import KVNamespace
from edgekv._types import ChangePage, Store
from edgekv.edge.cache import LocationCache
from edgekv.edge.stats import CacheStats

__all__ = ["SimClock", "SimLocation", "Simulation"]

_MAX_ROUNDS = 100  # settle: rounds of delivery before giving up on quiescence


class SimClock:
    """A location's clock: the simulation's time plus this location's own `offset` (skew)."""

    def __init__(self, sim: Simulation, offset: float = 0.0) -> None:
        self._sim = sim
        self.offset = offset

    def __call__(self) -> float:
        return self._sim.now + self.offset

    def __repr__(self) -> str:
        return f"<SimClock {self()} (offset {self.offset:+})>"


class _Log:
    """What the simulation learned of one namespace's feed: changes with the time it saw them,
    and the seq below which it holds nothing (history lost at the centre)."""

    __slots__ = ("changes", "cursor", "floor")

    def __init__(self, head: int) -> None:
        self.cursor = head
        self.floor = head
        self.changes: list[tuple[float, Change]] = []


class _LocationFeed:
    """The feed as one location receives it (its delay, whether it is cut off)."""

    def __init__(self, sim: Simulation) -> None:
        self._sim = sim
        self.location: SimLocation | None = None

    async def changes(
        self,
        namespace_id: str,
        *,
        since: int | None,
        prefix: str = "",
        limit: int = 1000,
        wait: float = 0,
    ) -> ChangePage:
        location = self.location
        assert location is not None
        if location.feed_down:
            raise StoreUnavailable(f"feed of {location.name} cut off by the simulation")
        log = await self._sim._collect(namespace_id)
        if since is None:
            return ChangePage([], log.cursor, log.cursor)
        if since < log.floor:
            raise HistoryGone(log.floor + 1)
        await self._sim._check(namespace_id, since)  # the centre's history decides a 410
        due = self._sim.now - location.feed_delay
        out: list[Change] = []
        for seen, change in log.changes:
            if change.seq <= since:
                continue
            if seen > due or len(out) == limit:
                break  # in seq order: a later change must wait for this one
            if change.key.startswith(prefix):
                out.append(change)
        cursor = out[-1].seq if out else since
        return ChangePage(out, cursor, log.cursor)


class SimLocation:
    """One simulated location: `name`, its `clock` (a `SimClock`), its `cache` (a real
    `LocationCache`), `client` (the handle its bindings come from) and the feed switches
    `feed_delay` (seconds) and `feed_down`."""

    def __init__(
        self, name: str, clock: SimClock, cache: LocationCache, client: Client, feed_delay: float
    ) -> None:
        self.name = name
        self.clock = clock
        self.cache = cache
        self.client = client
        self.feed_delay = feed_delay
        self.feed_down = False

    def __repr__(self) -> str:
        return f"<SimLocation {self.name}>"

    def namespace(self, namespace_id: str) -> KVNamespace:
        """The binding of a namespace as this location's workers see it."""
        return self.client.namespace(namespace_id)

    @property
    def stats(self) -> CacheStats:
        return self.cache.stats


class Simulation:
    """Locations over one centre: `Simulation()` (an in-memory store), `Simulation(store)` (any
    `Store`, e.g. `SQLiteStore`), `Simulation(path)` (SQLite in that directory) or
    `Simulation("http://…", token=…, account_id=…)` (a real central server; its clock is the
    real one, so expirations are checked there on real time). `start`: the simulated time at
    the beginning (default: now). Use `async with`, or `await aclose()`."""

    def __init__(
        self,
        centre: str | Path | Store | None = None,
        *,
        token: str | None = None,
        account_id: str | None = None,
        start: float | None = None,
    ) -> None:
        self.now = float(math.floor(time.time()) if start is None else start)
        self.clock = SimClock(self)  # the centre's
        remote = isinstance(centre, str) and centre.startswith(("http://", "https://"))
        self._url = centre if remote and isinstance(centre, str) else None
        self._token = token
        self._account_id = account_id
        self.admin = Client(
            centre, token=token, account_id=account_id, clock=self.clock, sweep_interval=None
        )
        self.locations: list[SimLocation] = []
        self._logs: dict[str, _Log] = {}
        self._reader: Store | None = None

    def __repr__(self) -> str:
        names = ", ".join(loc.name for loc in self.locations)
        return f"<Simulation at {self.now} [{names}]>"

    async def __aenter__(self) -> Simulation:
        await self.admin.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _centre(self) -> Store:
        return await self.admin.connect()

    def _remote(self) -> Store:
        from edgekv.edge.remote import RemoteStore

        assert self._url is not None and self._token and self.admin.account_id
        return RemoteStore(self._url, token=self._token, account_id=self.admin.account_id)

    # -- locations and namespaces ----------------------------------------------------------
    async def location(
        self,
        name: str,
        *,
        feed_delay: float = 0.0,
        push: bool = True,
        clock_offset: float = 0.0,
        **cache_options: Any,
    ) -> SimLocation:
        """A new location: `feed_delay`, seconds after the simulation saw a change that this
        location receives it; `push=False`, a location that never follows the feed;
        `clock_offset`, its clock's skew; other options go to `LocationCache`
        (`cache_bytes`, `stale_if_error`, `refresh_ahead`, `hot_window`, ...)."""
        centre = await self._centre()
        inner = self._remote() if self._url is not None else centre
        clock = SimClock(self, clock_offset)
        feed = _LocationFeed(self)
        cache = LocationCache(
            inner,
            location=name,
            clock=clock,
            push=push,
            feed=feed,
            manual_feed=True,
            **cache_options,
        )
        client = Client(cache, account_id=self.admin.account_id, clock=clock, sweep_interval=None)
        await client.connect()
        loc = feed.location = SimLocation(name, clock, cache, client, feed_delay)
        self.locations.append(loc)
        return loc

    async def create_namespace(self, title: str) -> KVNamespace:
        """A new namespace at the centre (its binding writes to the centre directly, as the
        REST API or wrangler would)."""
        return await self.admin.create_namespace(title)

    def namespace(self, namespace_id: str) -> KVNamespace:
        """The centre's binding of a namespace (writes made "elsewhere")."""
        return self.admin.namespace(namespace_id)

    # -- time and delivery -----------------------------------------------------------------
    async def _collect(self, namespace_id: str) -> _Log:
        """Read what is new in the centre's feed of a namespace, stamped with `now`."""
        if self._reader is None:
            self._reader = self._remote() if self._url is not None else await self._centre()
        log = self._logs.get(namespace_id)
        if log is None:
            head = await self._reader.changes(namespace_id, since=None)
            log = self._logs[namespace_id] = _Log(head.cursor)
        while True:
            try:
                page = await self._reader.changes(namespace_id, since=log.cursor, limit=1000)
            except HistoryGone:
                head = await self._reader.changes(namespace_id, since=None)
                log.changes.clear()
                log.cursor = log.floor = head.cursor
                return log
            log.changes.extend((self.now, change) for change in page.changes)
            log.cursor = page.cursor
            if len(page.changes) < 1000:
                return log

    async def _check(self, namespace_id: str, since: int) -> None:
        assert self._reader is not None
        await self._reader.changes(namespace_id, since=since, limit=1)

    async def settle(self) -> int:
        """Deliver every change that is due at each location (following its feed delay), and
        wait for the background re-reads they start. Returns the changes delivered."""
        total = 0
        for _ in range(_MAX_ROUNDS):
            delivered = 0
            for loc in self.locations:
                if loc.cache.follower is not None:
                    delivered += await loc.cache.follower.pump()
            for loc in self.locations:
                await loc.cache.settle()
            total += delivered
            if not delivered:
                return total
        raise RuntimeError("the simulation did not settle")  # pragma: no cover

    async def advance(self, seconds: float) -> int:
        """Move every clock `seconds` forward, then `settle`. Changes committed before this
        call are stamped with the time before it. Returns the changes delivered."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        for namespace_id in list(self._logs):
            await self._collect(namespace_id)
        self.now += seconds
        return await self.settle()

    async def aclose(self) -> None:
        for loc in self.locations:
            await loc.cache.aclose(inner=self._url is not None)
        self.locations.clear()
        if self._reader is not None and self._url is not None:
            await self._reader.aclose()
        self._reader = None
        await self.admin.aclose()
