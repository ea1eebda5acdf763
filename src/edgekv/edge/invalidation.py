"""`PushedInvalidation`: what a `LocationCache` does when its follower (`edgekv.edge.follower`)
reports a change: drop the key's copy, or re-read it in the background when it is hot; after a
410 or a late start, revalidate a whole namespace. A mixin of `LocationCache`: it works on the
cache's slots and in-flight fetches (declared below for the type checker).

Why each step (docs/locations.md, "Pushed invalidation"): a fetch in flight may predate the
change, so it is disowned, but kept when it turns out to have read that very version; a write
in flight here is ordered against the change by nobody, so its copy is dropped on its answer; a
hot key is re-read while its old copy is served `UPDATING` (no burst of misses), and a re-read
that fails closes the copy's window (it is then served only `STALE`, under rule 7).
"""

from __future__ import annotations

import math
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from edgekv._types import Clock, Entry
from edgekv.edge.slot import DEFAULT_CACHE_TTL, CachedEntry, Key, Pending, SlotFuture
from edgekv.edge.stats import CacheStats

__all__ = ["PushedInvalidation"]

_PULL_BATCH = 100  # keys per background re-read (one bulk read at the centre)


class PushedInvalidation:
    """Mixed into `LocationCache`; called by its follower."""

    stats: CacheStats
    hot_window: int
    _clock: Clock
    _index: dict[str, dict[str, CachedEntry]]
    _inflight: dict[Key, SlotFuture]
    _pending: dict[Key, Pending]
    _disowned: dict[Key, tuple[SlotFuture, str | None]]

    if TYPE_CHECKING:  # provided by LocationCache

        def _slot(self, ns: str, key: str) -> CachedEntry | None: ...
        def _drop(self, ns: str, key: str) -> None: ...
        def _register(self, ns: str, keys: Sequence[str]) -> list[SlotFuture]: ...
        def _spawn(self, coro: Coroutine[Any, Any, None]) -> None: ...
        async def _fetch(
            self,
            ns: str,
            keys: Sequence[str],
            futs: list[SlotFuture],
            now: int,
            ttl: int,
            *,
            reader: bool = True,
        ) -> list[Entry | None]: ...

    def changed(self, ns: str, key: str, version: str | None) -> None:
        """The feed says `key` changed (to `version`; None: deleted). A copy that is that
        version already stays (this location's own write, or a re-read that got it; a known
        miss stays on a delete). Otherwise a fetch in flight is disowned, a write in flight
        will drop its copy (its order against this change is unknown here), and the copy is
        re-read in the background when the key is hot, else dropped."""
        lk = (ns, key)
        slot = self._slot(ns, key)
        if slot is not None and slot.version == version and slot.refresh is None:
            return
        pending = self._pending.get(lk)
        if pending is not None:
            pending.contended = True
        fut = self._inflight.pop(lk, None)
        if fut is not None:
            self._disowned[lk] = (fut, version)
            self.stats.invalidations += 1
        elif lk in self._disowned:
            self._disowned[lk] = (self._disowned[lk][0], version)  # the newest change counts
        if slot is None:
            return
        now = math.floor(self._clock())
        if now - slot.read < self.hot_window:
            self._pull(ns, [key], now)
        else:
            self._drop(ns, key)
            self.stats.invalidations += 1

    def resync(self, ns: str) -> None:
        """The feed cannot vouch for this namespace's copies (its history is gone, or it was
        followed late): re-read the hot ones in the background, drop the others. Called once
        a new head cursor is held, so every later change still arrives."""
        self.stats.feed_resyncs += 1
        self._disown_namespace(ns)
        for lk, pending in self._pending.items():
            if lk[0] == ns:
                pending.contended = True
        now = math.floor(self._clock())
        hot: list[str] = []
        for key, slot in list(self._index.get(ns, {}).items()):
            if now - slot.read < self.hot_window:
                hot.append(key)
            else:
                self._drop(ns, key)
                self.stats.invalidations += 1
        for start in range(0, len(hot), _PULL_BATCH):
            self._pull(ns, hot[start : start + _PULL_BATCH], now)

    def _pull(self, ns: str, keys: list[str], now: int) -> None:
        """Re-read changed copies in the background, serving them UPDATING meanwhile."""
        futs = self._register(ns, keys)
        for key, fut in zip(keys, futs, strict=True):
            slot = self._slot(ns, key)
            if slot is not None:
                slot.refreshing(fut)
        self.stats.push_refreshes += len(keys)
        self._spawn(self._pulled(ns, keys, futs, now))

    async def _pulled(self, ns: str, keys: list[str], futs: list[SlotFuture], now: int) -> None:
        try:
            await self._fetch(ns, keys, futs, now, DEFAULT_CACHE_TTL, reader=False)
        except Exception:
            # The copy is known to be old: close its window (rule 7 may still serve it STALE
            # while the centre is down, within stale_if_error of when it was fetched).
            for key, fut in zip(keys, futs, strict=True):
                slot = self._slot(ns, key)
                if slot is not None and slot.refresh is fut:
                    slot.close()

    def holds(self, ns: str) -> bool:
        """Whether anything of the namespace is cached, being fetched or being written."""
        return (
            ns in self._index
            or any(lk[0] == ns for lk in self._inflight)
            or any(lk[0] == ns for lk in self._pending)
        )

    def _disown_namespace(self, ns: str) -> None:
        for lk in [lk for lk in self._inflight if lk[0] == ns]:
            del self._inflight[lk]
        for lk in [lk for lk in self._disowned if lk[0] == ns]:
            del self._disowned[lk]

    def drop_namespace(self, ns: str) -> None:
        """Forget every copy of a namespace (deleted, or its feed broke)."""
        self._disown_namespace(ns)
        for key in list(self._index.get(ns, ())):
            self._drop(ns, key)
