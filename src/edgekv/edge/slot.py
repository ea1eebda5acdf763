"""One cached key of a `LocationCache` (`Slot`), the writes in flight for a key (`Pending`),
and the small rules they share: what "no expiration" and "window closed" are, and the expiry
check of an answer joined late (`live`)."""

from __future__ import annotations

import asyncio

from edgekv._types import ABSENT_HIT, Entry

__all__ = [
    "CLOSED",
    "DEFAULT_CACHE_TTL",
    "HIT",
    "MISS",
    "NEVER",
    "STALE",
    "UPDATING",
    "Key",
    "LeaderGone",
    "Pending",
    "Slot",
    "SlotFuture",
    "live",
]

DEFAULT_CACHE_TTL = 60  # seconds, the binding's default cache_ttl

HIT = "HIT"
MISS = "MISS"
STALE = "STALE"
UPDATING = "UPDATING"

NEVER = 1 << 62  # "no expiration", so the hot path compares ints without a None test
CLOSED = -NEVER  # `fetched` of a copy whose window a change closed (kept for stale-if-error)

Key = tuple[str, str]
SlotFuture = asyncio.Future[Entry | None]


def live(entry: Entry | None, now: int) -> Entry | None:
    # A fetch joined late may have started seconds earlier (e.g. a refresh): its answer is
    # checked against the reader's own `now` (rule 5).
    if entry is None or entry.expiration is None or entry.expiration > now:
        return entry
    return None


class LeaderGone(Exception):
    """The reader that was fetching a key for everyone was cancelled."""


class Slot:
    """One cached key: its entry (None = known missing), when it was fetched, and the `Entry`
    objects to hand out, built once so that a hit allocates nothing."""

    __slots__ = (
        "born",
        "entry",
        "expires",
        "fetched",
        "hit",
        "lru_key",
        "read",
        "refresh",
        "refreshing",
        "size",
        "stale",
        "updating",
        "version",
    )

    def __init__(
        self, lru_key: Key, entry: Entry | None, fetched: int, size: int, read: int
    ) -> None:
        self.lru_key = lru_key
        self.entry = entry
        self.fetched = fetched  # start of its cache_ttl window (CLOSED once a change closed it)
        self.born = fetched  # when it was fetched, for stale-if-error
        self.read = read  # the last second a reader asked for it (hot keys are re-read)
        self.size = size
        self.refreshing = False
        self.refresh: SlotFuture | None = None  # the fetch refreshing it, when `refreshing`
        self.stale: Entry | None = None
        self.updating: Entry | None = None  # built when a refresh starts
        if entry is None:
            self.expires = NEVER
            self.hit: Entry | None = ABSENT_HIT  # a miss served from cache is a HIT too
            self.version: str | None = None
        else:
            exp = entry.expiration
            self.expires = NEVER if exp is None else exp
            self.version = entry.version
            self.hit = Entry(entry.value, exp, entry.metadata, HIT, entry.version)

    def refreshed(self, fut: SlotFuture) -> None:
        if fut is self.refresh:
            self.refreshing = False
            self.refresh = None


class Pending:
    """Writes in flight for one key; `contended` once two overlapped."""

    __slots__ = ("contended", "count")

    def __init__(self) -> None:
        self.count = 1
        self.contended = False
