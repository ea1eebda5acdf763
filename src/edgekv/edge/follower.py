"""`Follower`: a location follows the change feed of every namespace it holds copies of.

One long poll per namespace (`Store.changes(since=cursor, wait=…)`; over HTTP
`GET …/{ns}/changes`), never one per key. Each change is handed to the `LocationCache`, which
drops the copy of that key or, when the key is hot, re-reads it in the background
(`LocationCache.changed`). So a write made anywhere is seen at every following location about
one round trip after it commits, whatever `cache_ttl` the readers pass.

The start race. A namespace is followed from the moment its first copy is about to be made:
the cache awaits `follow(ns)` before its first fetch (or write) in that namespace, and
`follow` takes the feed's head cursor first. A change committed after that head is delivered
by the feed; one committed before it is already in what the fetch reads. If the head cannot be
had (feed down), the read goes on without it (rule 3 holds: copies live at most `cache_ttl`)
and the namespace is marked *unproven*: once a head arrives, its copies are revalidated
(`LocationCache.resync`: hot keys re-read, others dropped), since changes between their fetch
and that head were never seen.

Faults. A feed request that fails (unreachable, 5xx, any error) is retried with exponential
backoff and jitter from the same cursor, so nothing is missed and nothing seen twice; while
it fails the copies keep the TTL contract of system.md, and the counters say so
(`feed_errors`, `feed_disconnected`, `feed_lag_seconds`). History gone (410), or a cursor the
centre never handed out (its store was replaced): take a new head, then revalidate the
namespace's copies. The namespace deleted (404): its copies are dropped and following stops.
A namespace with no copies left (nor fetches or writes in flight) stops being followed after
its current poll.

Two modes: in the background (a task per namespace, long polls of `wait` seconds), or manual
(`background=False`: nothing runs by itself; `await pump()` reads every followed namespace's
feed until it is drained). The simulator (`edgekv.testing`) uses the manual mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from edgekv._exceptions import HistoryGone, NamespaceNotFound, SinceAhead, StoreError
from edgekv._types import ChangePage

if TYPE_CHECKING:
    from edgekv.edge.cache import LocationCache

__all__ = [
    "DEFAULT_BACKOFF",
    "DEFAULT_FEED_WAIT",
    "ChangeSource",
    "Follower",
]

log = logging.getLogger("edgekv.edge")

DEFAULT_FEED_WAIT = 20.0  # seconds a long poll is held by the centre
DEFAULT_BACKOFF = (0.1, 5.0)  # first retry delay and cap, in seconds (doubling, with jitter)
HEAD_TIMEOUT = 2.0  # a first read waits at most this long for the head cursor
PAGE = 1000  # changes per request (the feed's maximum)
_EMPTY_PAUSE = 0.2  # seconds between polls that a centre answers empty without holding them
_PUMP_STEPS = 1000  # requests per namespace and pump, at most (a drained feed takes one or two)


class ChangeSource(Protocol):
    """What the follower reads: any `Store`'s `changes` (a `RemoteStore` long-polls the
    centre's REST route with a deadline longer than `wait`)."""

    async def changes(
        self,
        namespace_id: str,
        *,
        since: int | None,
        prefix: str = "",
        limit: int = 1000,
        wait: float = 0,
    ) -> ChangePage: ...


def _resync_needed(exc: BaseException) -> bool:
    """The cursor is no good on this centre: history gone (410), or ahead of its head (400:
    the centre's store was replaced), as a store exception or a REST status."""
    if isinstance(exc, HistoryGone | SinceAhead):
        return True
    return isinstance(exc, StoreError) and getattr(exc, "status", None) in (400, 410)


class _Feed:
    """One followed namespace: its cursor (None until the head is known), its task, whether
    its copies still need revalidating (`unproven`), and its health."""

    __slots__ = (
        "churn",
        "current_at",
        "cursor",
        "down",
        "failures",
        "namespace_id",
        "quick_empty",
        "ready",
        "task",
        "touched",
        "unproven",
    )

    def __init__(self, namespace_id: str, now: float) -> None:
        self.namespace_id = namespace_id
        self.cursor: int | None = None
        self.unproven = False
        self.down = False
        self.failures = 0
        self.churn = 0  # resyncs in a row (a centre that keeps refusing cursors is paced)
        self.quick_empty = False  # the last long poll came back empty well before its wait
        self.current_at = now  # when the feed last answered (lag is measured from here)
        self.touched = True  # asked for since the last stop check
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.task: asyncio.Task[None] | None = None


class Follower:
    """Follows the feed of `cache`'s namespaces from `source`. `wait`: seconds a long poll is
    held; `backoff`: (first delay, cap) of retries; `background=False`: manual mode (`pump`).
    `rng` (default `random.random`) draws the jitter; `sleep` waits between retries."""

    def __init__(
        self,
        cache: LocationCache,
        source: ChangeSource,
        *,
        wait: float = DEFAULT_FEED_WAIT,
        backoff: tuple[float, float] = DEFAULT_BACKOFF,
        background: bool = True,
        head_timeout: float = HEAD_TIMEOUT,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if not 0 <= wait <= 60:
            raise ValueError("wait must be in [0, 60] seconds")
        self.cache = cache
        self.source = source
        self.wait = wait
        self.backoff = backoff
        self.background = background
        self.head_timeout = head_timeout
        self._rng = rng
        self._feeds: dict[str, _Feed] = {}
        self._closed = False
        cache.stats.push = True
        cache.stats.lag_source = self.lag

    def __repr__(self) -> str:
        return f"<Follower {self.cache.location} following {len(self._feeds)} namespaces>"

    @property
    def namespaces(self) -> list[str]:
        """The namespaces followed now."""
        return list(self._feeds)

    def cursor(self, namespace_id: str) -> int | None:
        """The last cursor seen for a namespace (None: not followed, or no head yet)."""
        feed = self._feeds.get(namespace_id)
        return None if feed is None else feed.cursor

    def lag(self) -> float:
        """Seconds (of the cache's clock) since the least current followed feed last answered;
        0 when every one of them is connected."""
        now = self.cache.clock()
        worst = 0.0
        for feed in self._feeds.values():
            if feed.down or feed.cursor is None:
                worst = max(worst, now - feed.current_at)
        return worst

    # -- following -------------------------------------------------------------------------
    async def follow(self, namespace_id: str) -> None:
        """Make sure `namespace_id` is followed, its head cursor taken before this returns
        (unless the feed failed to answer within `head_timeout`: then it is followed
        *unproven*). Called by the cache before its first fetch or write in a namespace."""
        feed = self._feeds.get(namespace_id)
        if feed is None:
            if self._closed:
                return
            feed = self._feeds[namespace_id] = _Feed(namespace_id, self.cache.clock())
            self.cache.stats.feed_namespaces += 1
            feed.task = asyncio.create_task(self._run(feed))
        else:
            feed.touched = True
        if not feed.ready.done():
            await asyncio.shield(feed.ready)

    async def _run(self, feed: _Feed) -> None:
        try:
            try:
                async with asyncio.timeout(self.head_timeout):
                    await self._step(feed, 0)
            except TimeoutError:
                self._failed(feed, None)
            if feed.cursor is None:
                feed.unproven = True  # copies will be made before a head is known
            feed.ready.set_result(None)
            while self.background:
                retries = max(feed.failures, feed.churn - 1)
                if retries > 0:
                    await asyncio.sleep(self._delay(retries))
                elif feed.quick_empty:
                    await asyncio.sleep(_EMPTY_PAUSE)  # a centre that does not hold polls
                if not await self._step(feed, self.wait):
                    return  # nothing left to follow
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug must not leave copies nobody vouches for: drop them
            log.exception("feed of %s at %s failed", feed.namespace_id, self.cache.location)
            self.cache.drop_namespace(feed.namespace_id)
        finally:
            if not feed.ready.done():
                feed.ready.set_result(None)
            if self.background:
                self._forget(feed)

    def _delay(self, failures: int) -> float:
        first, cap = self.backoff
        delay = min(cap, first * 2.0 ** min(failures - 1, 30))
        return delay * (0.5 + self._rng() / 2)  # "equal jitter": between half and all of it

    async def _step(self, feed: _Feed, wait: float) -> bool:
        """One feed request: the head (when there is no cursor), else the changes after the
        cursor, applied. False when following should stop (the namespace is gone, or nothing
        of it is cached any more); a failure is recorded and True returned."""
        ns = feed.namespace_id
        cache = self.cache
        try:
            if feed.cursor is None:
                page = await self.source.changes(ns, since=None, limit=1, wait=0)
                self._answered(feed)
                feed.cursor = int(page.cursor)
                if feed.unproven:
                    feed.unproven = False
                    cache.resync(ns)
            else:
                started = asyncio.get_running_loop().time()
                page = await self.source.changes(ns, since=feed.cursor, limit=PAGE, wait=wait)
                elapsed = asyncio.get_running_loop().time() - started
                self._answered(feed)
                feed.churn = 0
                feed.quick_empty = not page.changes and elapsed < wait / 2
                cache.stats.feed_changes += len(page.changes)
                for change in page.changes:
                    cache.changed(ns, change.key, change.version)
                feed.cursor = int(page.cursor)
        except NamespaceNotFound:
            self._answered(feed)
            cache.drop_namespace(ns)
            return False
        except (StoreError, OSError) as exc:
            if not _resync_needed(exc):
                self._failed(feed, exc)
            else:
                self._answered(feed)
                log.warning("feed of %s at %s: %s; revalidating", ns, cache.location, exc)
                feed.cursor = None  # a new head, then the copies are revalidated against it
                feed.unproven = True
                feed.churn += 1
        if not feed.touched and not cache.holds(ns):
            return False
        feed.touched = False
        return True

    def _answered(self, feed: _Feed) -> None:
        stats = self.cache.stats
        stats.feed_polls += 1
        if feed.down:
            feed.down = False
            stats.feed_disconnected -= 1
            stats.feed_reconnects += 1
        feed.failures = 0
        feed.current_at = self.cache.clock()

    def _failed(self, feed: _Feed, exc: BaseException | None) -> None:
        stats = self.cache.stats
        stats.feed_errors += 1
        feed.failures += 1
        if not feed.down:
            feed.down = True
            stats.feed_disconnected += 1
            log.warning(
                "feed of %s at %s failing (%s); copies keep their cache_ttl, retrying",
                feed.namespace_id,
                self.cache.location,
                exc or "no answer",
            )

    def _forget(self, feed: _Feed) -> None:
        if self._feeds.get(feed.namespace_id) is feed:
            del self._feeds[feed.namespace_id]
            stats = self.cache.stats
            stats.feed_namespaces -= 1
            if feed.down:
                stats.feed_disconnected -= 1

    # -- manual mode -----------------------------------------------------------------------
    async def pump(self) -> int:
        """Manual mode: read every followed namespace's feed (wait 0) until it is drained and
        apply what it says; namespaces with nothing cached stop being followed. Returns the
        number of changes applied. Failures are recorded as in the background (no sleeping:
        the next `pump` retries)."""
        applied = 0
        for feed in list(self._feeds.values()):
            if feed.task is not None and not feed.task.done():
                await asyncio.shield(feed.ready)
            for _ in range(_PUMP_STEPS):
                before = self.cache.stats.feed_changes
                had_cursor = feed.cursor is not None
                keep = await self._step(feed, 0)
                got = self.cache.stats.feed_changes - before
                applied += got
                if not keep:
                    self._forget(feed)
                    break
                if feed.failures or (had_cursor and feed.cursor is not None and got < PAGE):
                    break  # drained (or failing: the next pump retries)
        return applied

    async def aclose(self) -> None:
        self._closed = True
        tasks = [f.task for f in self._feeds.values() if f.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._feeds.clear()
        self.cache.stats.feed_namespaces = 0
        self.cache.stats.feed_disconnected = 0
