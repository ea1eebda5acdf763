"""`LocationCache`: a bounded in-memory cache in front of any `Store` (a central server in
production), with the consistency contract of docs/locations.md ("The consistency model",
rules 1-10).

How each rule is met (docs/locations.md has the long form):

1. Writes go straight to the inner store; the cache changes only after it acknowledged.
2. Read-your-writes: an acknowledged put/delete replaces this location's copy (a delete leaves a
   negative copy) and disowns any central fetch of that key still in flight, so an older value
   can never land afterwards. Bulk writes, failed writes and overlapping writes to one key (their
   order at the centre is unknown here) drop the copy instead: the next read asks the centre.
3. A copy fetched at second F is served while `now < F + cache_ttl` of *the read at hand*, so a
   read with a lower cache_ttl refetches. F is the `now` of the read that started the fetch (or
   the clock at a write's acknowledgement): never later than the centre's answer.
4. Absence is cached like a value (a slot without entry).
5. Every hit compares `now` with the entry's expiration; an expired copy is never served (it
   turns into a negative copy: as of its fetch, the centre would have answered "missing").
6. A hit in the last `refresh_ahead` fraction of its TTL window starts one background refresh
   and answers at once (`UPDATING`); a read past the window joins that refresh. Coalescing: the
   first cold reader of a key fetches it in its own task, later ones await its future.
7. Stale-if-error: when the centre fails (`StoreUnavailable`), a copy is served for up to
   `stale_if_error` seconds past its TTL window (`STALE`); cold reads and writes raise. After a
   failure the centre counts as down for `retry_interval` seconds: lapsed copies are then served
   stale without waiting on it, and no refreshes are started. One fetch per key is ever in flight.
8. `list_keys` always goes to the centre, and so do conditional writes (never answered from
   the cache) and the change feed; a successful write installs the copy with the version the
   centre gave it.
9. LRU within a byte budget: value + key + metadata bytes + `ENTRY_OVERHEAD` per entry.
10. `Entry.cache_status`: `HIT`, `MISS`, `STALE`, `UPDATING`; a miss is an `Absent` entry with
    `HIT` (a negative copy) or `MISS` (the centre said so just now), as in production.

Pushed invalidation (on unless `push=False`): a namespace's feed is followed (`.follower`,
edgekv.edge.follower) from before its first fetch or write here; each change drops or re-reads
the key's copy (edgekv.edge.invalidation). It only ever shortens a copy's life.

Time: reads use the `now` they are given (the binding passes the floor of its clock); writes and
the down window use `clock`. Nothing sleeps.

The hot path (`get` of a cached key) is two dict lookups and a move in the LRU ring, and
returns the copy itself (a `CachedEntry` is the `Entry` a hit hands out): nothing is built.
The copies, their LRU order and the byte budget: edgekv.edge.copies; one copy, one object:
edgekv.edge.slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from typing import Any, TypeVar

from edgekv._exceptions import NamespaceNotFound, StoreUnavailable
from edgekv._types import (
    ABSENT_HIT,
    ABSENT_MISS,
    Absent,
    Clock,
    Condition,
    Entry,
    KeyInfo,
    Store,
    Written,
)
from edgekv.edge.copies import ENTRY_OVERHEAD, CachedCopies
from edgekv.edge.follower import DEFAULT_BACKOFF, DEFAULT_FEED_WAIT, ChangeSource, Follower
from edgekv.edge.invalidation import PushedInvalidation
from edgekv.edge.passthrough import CentrePassthrough
from edgekv.edge.slot import (
    CLOSED,
    DEFAULT_CACHE_TTL,
    HIT,
    MISS,
    STALE,
    UPDATING,
    CachedEntry,
    CachedMiss,
    Key,
    LeaderGone,
    Pending,
    SlotFuture,
    live,
)
from edgekv.edge.stats import CacheStats

__all__ = [
    "DEFAULT_CACHE_BYTES",
    "DEFAULT_CACHE_TTL",
    "DEFAULT_HOT_WINDOW",
    "DEFAULT_REFRESH_AHEAD",
    "DEFAULT_STALE_IF_ERROR",
    "ENTRY_OVERHEAD",
    "HIT",
    "MISS",
    "STALE",
    "UPDATING",
    "LocationCache",
]

DEFAULT_CACHE_BYTES = 64 * 1024 * 1024
DEFAULT_STALE_IF_ERROR = 300  # seconds a copy may outlive its TTL while the centre is down
DEFAULT_REFRESH_AHEAD = 0.25  # the last quarter of a TTL window refreshes in the background
DEFAULT_RETRY_INTERVAL = 1  # seconds the centre counts as down after a failure
DEFAULT_HOT_WINDOW = 10  # a key read within this many seconds is re-read when it changes

_R = TypeVar("_R")


class LocationCache(CachedCopies, CentrePassthrough, PushedInvalidation):
    """A `Store` caching `inner` for one location. `cache_bytes` is the byte budget (default
    64 MiB), `stale_if_error` how long (s) a copy may be served past its TTL while the centre is
    down, `refresh_ahead` the fraction of the TTL window at its end in which a hit refreshes the
    key in the background (0 disables), `retry_interval` how long (s) a failed centre counts as
    down. Counters: `.stats`.

    Push: with `push` (the default) and a `feed` to follow (default: `inner`, when it has a
    change feed), `.follower` follows it (`feed_wait`: seconds of each long poll;
    `feed_backoff`: first retry delay and cap (s) while the feed fails; `manual_feed=True`:
    nothing runs in the background, `await cache.follower.pump()` reads
    the feed). `hot_window`: a key read within this many seconds is re-read on a change
    instead of dropped."""

    def __init__(
        self,
        inner: Store,
        *,
        location: str,
        cache_bytes: int | None = None,
        clock: Clock | None = None,
        stale_if_error: int = DEFAULT_STALE_IF_ERROR,
        refresh_ahead: float = DEFAULT_REFRESH_AHEAD,
        retry_interval: int = DEFAULT_RETRY_INTERVAL,
        push: bool = True,
        feed: ChangeSource | None = None,
        feed_wait: float = DEFAULT_FEED_WAIT,
        feed_backoff: tuple[float, float] = DEFAULT_BACKOFF,
        manual_feed: bool = False,
        hot_window: int = DEFAULT_HOT_WINDOW,
    ) -> None:
        budget = DEFAULT_CACHE_BYTES if cache_bytes is None else int(cache_bytes)
        if budget < 0:
            raise ValueError("cache_bytes must be >= 0")
        if not 0 <= refresh_ahead < 1:
            raise ValueError("refresh_ahead must be in [0, 1)")
        if stale_if_error < 0 or retry_interval < 0 or hot_window < 0:
            raise ValueError("stale_if_error, retry_interval and hot_window must be >= 0")
        self.inner = inner
        self.location = location
        self.budget = budget
        self.stale_if_error = stale_if_error
        self.refresh_ahead = refresh_ahead
        self.retry_interval = retry_interval
        self.hot_window = hot_window
        self.clock: Clock = clock or time.time
        self._clock = self.clock
        # A hit refreshes once its age reaches ttl * _refresh_after (inf: never).
        self._refresh_after = 1.0 - refresh_ahead if refresh_ahead > 0 else math.inf
        self._init_copies()
        self._inflight: dict[Key, SlotFuture] = {}
        self._pending: dict[Key, Pending] = {}
        # Fetches a change disowned, with the version that change made (None: deleted): if the
        # answer turns out to be that version, it is as fresh as anything known here: kept.
        self._disowned: dict[Key, tuple[SlotFuture, str | None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._down_until = 0  # second before which the centre counts as down
        self.stats = CacheStats(location, budget)
        if feed is None and callable(getattr(inner, "changes", None)):
            feed = inner
        self.follower: Follower | None = None
        if push and feed is not None:
            self.follower = Follower(
                self, feed, wait=feed_wait, backoff=feed_backoff, background=not manual_feed
            )

    def __repr__(self) -> str:
        return f"<LocationCache {self.location} {self.stats.entries} entries over {self.inner!r}>"

    # -- reads -----------------------------------------------------------------------------
    async def get(
        self, namespace_id: str, key: str, *, now: int, cache_ttl: int | None = None
    ) -> Entry | None:
        table = self._index.get(namespace_id)
        if table is not None:
            slot = table.get(key)
            if slot is not None:
                ttl = cache_ttl or DEFAULT_CACHE_TTL
                age = now - slot.fetched
                exp = slot.expiration
                if age < ttl and (exp is None or now < exp):
                    # The hit path: `_touch` and `_read_at` inlined (each call would cost as
                    # much as its body); tests/edge/test_cache_copies.py pins the LRU order.
                    ring = self._ring
                    after = slot.next
                    if after is not ring:  # `_touch`, inlined: the newest copy moves
                        before = slot.prev
                        before.next = after
                        after.prev = before
                        newest = ring.prev
                        newest.next = slot
                        slot.prev = newest
                        slot.next = ring
                        ring.prev = slot
                    self.stats.hits += 1
                    if slot.read != now:  # `_read_at`, inlined: one int held per second
                        if now != self._second:
                            self._second = now
                        slot.read = self._second
                    extra = slot.extra
                    if extra.refresh is not None:
                        self.stats.updating += 1
                        return extra.updating
                    if age >= ttl * self._refresh_after and now >= self._down_until:
                        self.stats.updating += 1
                        return self._refresh(slot, namespace_id, key, now, ttl)
                    return ABSENT_HIT if slot.__class__ is CachedMiss else slot
        return await self._get_cold(namespace_id, key, now, cache_ttl or DEFAULT_CACHE_TTL)

    async def _get_cold(self, ns: str, key: str, now: int, ttl: int) -> Entry | None:
        if self.follower is not None:
            await self.follower.follow(ns)  # before any fetch fills a copy (see the docstring)
        slot = self._slot(ns, key)
        if slot is not None:
            if now - slot.fetched < ttl:
                self.stats.hits += 1
                self._read_at(slot, now)
                if slot.unexpired(now):  # filled meanwhile (a retry of `get_many`)
                    return slot.hit
                # Within its window but expired: as of its fetch the centre says "missing".
                self._fill(ns, key, None, slot.fetched)
                return None
            if now < self._down_until and self._stale_ok(slot, now, ttl):
                return self._serve_stale(slot, now)
        self.stats.misses += 1
        lk = (ns, key)
        while True:
            fut = self._inflight.get(lk)
            try:
                if fut is None:
                    # The first reader fetches in its own task (no task hop on a cold read);
                    # later readers of the key wait on its future.
                    fut = self._register(ns, (key,))[0]
                    entry = (await self._fetch(ns, (key,), [fut], now, ttl))[0]
                else:
                    self.stats.coalesced_waits += 1
                    entry = await self._join(fut)
            except StoreUnavailable:
                slot = self._slot(ns, key)
                if slot is not None and self._stale_ok(slot, now, ttl):
                    return self._serve_stale(slot, now)
                raise
            except LeaderGone:
                continue  # the reader that fetched was cancelled: fetch again
            return live(entry, now) or ABSENT_MISS

    async def get_many(
        self, namespace_id: str, keys: Sequence[str], *, now: int, cache_ttl: int | None = None
    ) -> dict[str, Entry]:
        """Cached keys from the cache; the others in one inner `get_many` (keys already being
        fetched join that fetch)."""
        ttl = cache_ttl or DEFAULT_CACHE_TTL
        out: dict[str, Entry] = {}
        cold: list[str] = []
        table = self._index.get(namespace_id)
        for key in keys:
            slot = None if table is None else table.get(key)
            if slot is None or now - slot.fetched >= ttl or not slot.unexpired(now):
                cold.append(key)
                continue
            self._touch(slot)
            self.stats.hits += 1
            self._read_at(slot, now)
            extra = slot.extra
            entry: Entry | None
            if extra.refresh is not None:
                entry = extra.updating
                self.stats.updating += 1
            elif now - slot.fetched >= ttl * self._refresh_after and now >= self._down_until:
                entry = self._refresh(slot, namespace_id, key, now, ttl)
                self.stats.updating += 1
            else:
                entry = slot.hit
            if entry is not None and entry.__class__ is not Absent:
                out[key] = entry
        if cold:
            await self._get_many_cold(namespace_id, list(dict.fromkeys(cold)), now, ttl, out)
        return out

    async def _get_many_cold(
        self, ns: str, keys: list[str], now: int, ttl: int, out: dict[str, Entry]
    ) -> None:
        if self.follower is not None:
            await self.follower.follow(ns)
        waits: list[tuple[str, SlotFuture]] = []
        fetch: list[str] = []
        down = now < self._down_until
        for key in keys:
            slot = self._slot(ns, key)
            if slot is not None:
                if now - slot.fetched < ttl:  # expired within its window, as in `_get_cold`
                    self._fill(ns, key, None, slot.fetched)
                    self.stats.hits += 1
                    continue
                if down and self._stale_ok(slot, now, ttl):
                    entry = self._serve_stale(slot, now)
                    if entry is not None:
                        out[key] = entry
                    continue
            fut = self._inflight.get((ns, key))
            if fut is None:
                fetch.append(key)
            else:
                self.stats.coalesced_waits += 1
                waits.append((key, fut))
        self.stats.misses += len(waits) + len(fetch)
        results: list[tuple[str, Entry | None]] = []
        if fetch:
            futs = self._register(ns, fetch)
            try:
                results += zip(fetch, await self._fetch(ns, fetch, futs, now, ttl), strict=True)
            except StoreUnavailable as exc:
                results += [(key, self._stale_or_raise(ns, key, now, ttl, exc)) for key in fetch]
        for key, fut in waits:
            try:
                results.append((key, await self._join(fut)))
            except StoreUnavailable as exc:
                results.append((key, self._stale_or_raise(ns, key, now, ttl, exc)))
            except LeaderGone:
                results.append((key, await self._get_cold(ns, key, now, ttl)))
        for key, result in results:
            entry = live(result, now)
            if entry is not None:
                out[key] = entry

    def _stale_or_raise(
        self, ns: str, key: str, now: int, ttl: int, exc: StoreUnavailable
    ) -> Entry | None:
        slot = self._slot(ns, key)
        if slot is None or not self._stale_ok(slot, now, ttl):
            raise exc
        return self._serve_stale(slot, now)

    async def list_keys(
        self, namespace_id: str, *, prefix: str, after: str | None, limit: int, now: int
    ) -> list[KeyInfo]:
        return await self.inner.list_keys(
            namespace_id, prefix=prefix, after=after, limit=limit, now=now
        )

    # -- central fetches -------------------------------------------------------------------
    def _register(self, ns: str, keys: Sequence[str]) -> list[SlotFuture]:
        """One in-flight future per key: later readers of these keys wait on it."""
        loop = asyncio.get_running_loop()
        futs: list[SlotFuture] = []
        for key in keys:
            fut: SlotFuture = loop.create_future()
            self._inflight[(ns, key)] = fut
            futs.append(fut)
        return futs

    @staticmethod
    async def _join(fut: SlotFuture) -> Entry | None:
        """Wait for another reader's fetch. Shielded: cancelling this reader must not cancel
        the shared future. `LeaderGone` when the fetching reader was cancelled instead."""
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if fut.cancelled() and task is not None and not task.cancelling():
                raise LeaderGone from None
            raise

    async def _fetch(
        self,
        ns: str,
        keys: Sequence[str],
        futs: list[SlotFuture],
        now: int,
        ttl: int,
        *,
        reader: bool = True,
    ) -> list[Entry | None]:
        """One central read for `keys` (registered with `futs`): fills the cache unless a
        write or a change disowned the fetch meanwhile, resolves the futures, returns the MISS
        entries. `reader`: a reader asked (the key counts as read at `now`)."""
        self.stats.central_fetches += 1
        try:
            if len(keys) == 1:
                entry = await self.inner.get(ns, keys[0], now=now, cache_ttl=ttl)
                found = {} if entry is None else {keys[0]: entry}
            else:
                found = await self.inner.get_many(ns, keys, now=now, cache_ttl=ttl)
        except BaseException as exc:
            self._fetch_failed(ns, keys, futs, exc)
            raise
        results: list[Entry | None] = []
        for key, fut in zip(keys, futs, strict=True):
            entry = found.get(key)
            lk = (ns, key)
            if self._inflight.get(lk) is fut:
                # Still the current fetch (no write acknowledged meanwhile): keep the copy.
                del self._inflight[lk]
                self._fill(ns, key, entry, now, now if reader else CLOSED)
            elif self._disowned.get(lk, (None,))[0] is fut:
                version = self._disowned.pop(lk)[1]
                # Disowned by a change, but it read that change (or a fetch or write took over).
                if (None if entry is None else entry.version) == version and not (
                    lk in self._inflight or lk in self._pending
                ):
                    self._fill(ns, key, entry, now, now if reader else CLOSED)
            result = (
                None
                if entry is None
                else Entry(entry.value, entry.expiration, entry.metadata, MISS, entry.version)
            )
            if not fut.done():
                fut.set_result(result)
            results.append(result)
        return results

    async def _background(self, ns: str, key: str, fut: SlotFuture, now: int, ttl: int) -> None:
        with contextlib.suppress(Exception):  # delivered to any waiter through `fut`
            await self._fetch(ns, (key,), [fut], now, ttl)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _fetch_failed(
        self, ns: str, keys: Sequence[str], futs: list[SlotFuture], exc: BaseException
    ) -> None:
        if isinstance(exc, StoreUnavailable):
            self._centre_down()
        for key, fut in zip(keys, futs, strict=True):
            if self._inflight.get((ns, key)) is fut:
                del self._inflight[(ns, key)]
            if self._disowned.get((ns, key), (None,))[0] is fut:
                del self._disowned[(ns, key)]
            if isinstance(exc, NamespaceNotFound):
                self._drop(ns, key)
            if fut.done():
                continue
            if isinstance(exc, asyncio.CancelledError):
                fut.cancel()
            else:
                fut.set_exception(exc)
                # Marked retrieved: a refresh nobody waits for may fail without a "never
                # retrieved" log; waiters still get the exception through their own await.
                fut.exception()

    def _refresh(self, slot: CachedEntry, ns: str, key: str, now: int, ttl: int) -> Entry | None:
        """Refresh `slot` in the background; returns the UPDATING entry to serve meanwhile."""
        fut = self._inflight.get((ns, key))
        if fut is None:
            fut = self._register(ns, (key,))[0]
            self._spawn(self._background(ns, key, fut, now, ttl))
            self.stats.refreshes += 1
        return slot.refreshing(fut)

    def _centre_down(self) -> None:
        self.stats.central_errors += 1
        self._down_until = max(self._down_until, math.floor(self._clock()) + self.retry_interval)

    def _stale_ok(self, slot: CachedEntry, now: int, ttl: int) -> bool:
        return now - slot.born < ttl + self.stale_if_error

    def _serve_stale(self, slot: CachedEntry, now: int) -> Entry | None:
        """The copy past its TTL; an expired one answers "missing" (rule 5 holds here too)."""
        self.stats.stale_serves += 1
        if slot.missing or not slot.unexpired(now):
            return None
        return slot.stale_entry()

    def clear(self) -> None:
        """Forget every cached copy (in-flight fetches are disowned)."""
        self._clear_copies()
        self._inflight.clear()
        self._disowned.clear()

    # -- writes ----------------------------------------------------------------------------
    def _begin(self, ns: str, keys: Iterable[str]) -> list[Key]:
        started: list[Key] = []
        for key in keys:
            lk = (ns, key)
            pending = self._pending.get(lk)
            if pending is None:
                self._pending[lk] = Pending()
            else:
                pending.count += 1
                pending.contended = True
            started.append(lk)
        return started

    def _end(self, started: list[Key], entries: Sequence[Entry | None] | None, ok: bool) -> None:
        """After the centre answered: install the written entries (an entry None: deleted), or
        drop the copies: when `entries` is None (bulk writes: a 10,000-pair import must not
        flush the cache), when the write failed (it may have committed anyway) or when it
        overlapped another write of the key."""
        fetched = math.floor(self._clock())
        for i, lk in enumerate(started):
            self._inflight.pop(lk, None)  # a fetch begun before the ack must not land later
            self._disowned.pop(lk, None)
            pending = self._pending[lk]
            pending.count -= 1
            if pending.count == 0:
                del self._pending[lk]
            if entries is None or not ok or pending.contended:
                self._drop(*lk)
            else:
                self._fill(lk[0], lk[1], entries[i], fetched)
        if ok:
            self.stats.writes += len(started)

    async def _write(
        self,
        ns: str,
        keys: Iterable[str],
        entries: Callable[[_R], Sequence[Entry | None]] | None,
        call: Awaitable[_R],
    ) -> _R:
        """Run the centre's write; then `entries(result)` are the copies to install (None:
        drop them)."""
        if entries is not None and self.follower is not None:
            await self.follower.follow(ns)  # the written copy must be followed from the start
        started = self._begin(ns, keys)
        try:
            result = await call
        except BaseException as exc:
            self._end(started, None, ok=False)
            if isinstance(exc, StoreUnavailable):
                self._centre_down()
            raise
        self._end(started, None if entries is None else entries(result), ok=True)
        return result

    async def put(
        self, namespace_id: str, key: str, entry: Entry, *, condition: Condition | None = None
    ) -> Written:
        def copy(written: Written) -> tuple[Entry]:
            return (Entry(entry.value, entry.expiration, entry.metadata, None, written.version),)

        return await self._write(
            namespace_id,
            (key,),
            copy,
            self.inner.put(namespace_id, key, entry, condition=condition),
        )

    async def put_many(self, namespace_id: str, items: Sequence[tuple[str, Entry]]) -> None:
        keys = dict.fromkeys(key for key, _ in items)
        await self._write(namespace_id, keys, None, self.inner.put_many(namespace_id, items))

    async def delete(
        self,
        namespace_id: str,
        key: str,
        *,
        condition: Condition | None = None,
        now: int | None = None,
    ) -> Written | None:
        return await self._write(
            namespace_id,
            (key,),
            lambda _: (None,),
            self.inner.delete(namespace_id, key, condition=condition, now=now),
        )

    async def delete_many(
        self, namespace_id: str, keys: Sequence[str], *, now: int | None = None
    ) -> None:
        unique = dict.fromkeys(keys)
        await self._write(
            namespace_id, unique, None, self.inner.delete_many(namespace_id, keys, now=now)
        )

    async def delete_namespace(self, account_id: str, namespace_id: str) -> None:
        await self.inner.delete_namespace(account_id, namespace_id)
        self.drop_namespace(namespace_id)

    async def settle(self) -> None:
        """Wait until every background fetch (refreshes, re-reads of changed keys) is done."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self, *, inner: bool = True) -> None:
        """Stop following, cancel background fetches, close `inner` (unless `inner=False`:
        a store shared with others, as in the simulator)."""
        if self.follower is not None:
            await self.follower.aclose()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        if inner:
            await self.inner.aclose()
