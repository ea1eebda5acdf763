"""One cached key of a `LocationCache` (`CachedEntry`), the writes in flight for a key
(`Pending`), and the small rules they share: what "window closed" is, and the expiry check of
an answer joined late (`live`).

Memory is the point of `CachedEntry`'s shape: a location holds millions of them, so each
cached key is one object. It is the `Entry` a hit hands out (status `HIT`; nothing is built on
a hit), and it is also the key's node in the cache's LRU ring and its record of when it was
fetched and last read. What only a few copies need at a time (a refresh in flight and the
`UPDATING` entry served meanwhile, a `STALE` entry, a closed window) lives in an `Extra` of
its own only while needed; otherwise the copy points to its namespace's shared `Extra`,
which names the namespace.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from edgekv._types import ABSENT_HIT, Entry

__all__ = [
    "CLOSED",
    "DEFAULT_CACHE_TTL",
    "HIT",
    "MISS",
    "NEVER",
    "STALE",
    "UPDATING",
    "CachedEntry",
    "CachedMiss",
    "Extra",
    "Key",
    "LeaderGone",
    "Pending",
    "SlotFuture",
    "compact_version",
    "live",
]

DEFAULT_CACHE_TTL = 60  # seconds, the binding's default cache_ttl

HIT = "HIT"
MISS = "MISS"
STALE = "STALE"
UPDATING = "UPDATING"

NEVER = 1 << 62
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


class Extra:
    """The parts of a copy only some copies need, for as long as they need them, and the
    namespace of the copy. The copies of a namespace that need nothing more all share its one
    empty `Extra` (`base` None), so naming the namespace costs a copy nothing beyond this
    pointer; a copy that needs more gets one of its own (`base`: the shared one, which it
    goes back to once it needs nothing). The shared one is never changed."""

    __slots__ = ("base", "born", "namespace", "refresh", "stale", "updating")

    def __init__(self, namespace: str, base: Extra | None = None) -> None:
        self.namespace = namespace
        self.base = base
        self.born: int | None = None  # when it was fetched, once its window is closed
        self.refresh: SlotFuture | None = None  # the fetch refreshing it
        self.updating: Entry | None = None  # served while `refresh` runs (None: a negative copy)
        self.stale: Entry | None = None  # served past its window while the centre is down


def compact_version(version: str | None) -> int | str | None:
    """A version as a copy keeps it: the seq it is the decimal of (`version_of`) as an int,
    32 bytes where its str takes 64 (a location holds millions); any other str as it is."""
    if (
        version is not None
        and version.isdigit()
        and version.isascii()
        and (version[0] != "0" or version == "0")  # so str() gives the very same text back
    ):
        return int(version)
    return version


class CachedEntry(Entry):
    """One cached key: the `Entry` a hit returns (`cache_status` `HIT`); a known miss is a
    `CachedMiss`. Besides the entry: its key, its neighbours in the LRU ring (`prev` older,
    `next` newer), the second its `cache_ttl` window starts (`fetched`), the last second a
    reader asked for it (`read`: hot keys are re-read when they change), and `extra` (its
    namespace's shared `Extra` mostly; `namespace` reads it from there).

    Ten slots (112 B), not twelve: `cache_status` is the class's (`HIT` here, None for a
    `CachedMiss`), so Entry's slot for it holds `read`; Entry's `version` slot holds the
    version as `compact_version` made it. Both under their own names, below.

    It compares equal to an `Entry` with the same data, as the entries a hit returned before
    did. Treat it as immutable, like every `Entry` (it is shared by every reader)."""

    __slots__ = ("extra", "fetched", "key", "next", "prev")

    prev: CachedEntry
    next: CachedEntry
    cache_status: str | None = HIT
    if TYPE_CHECKING:
        read: int
        _version: int | str | None
    else:  # Entry's slots under the names they serve here (see above)
        read = Entry.__dict__["cache_status"]
        _version = Entry.__dict__["version"]

    def __init__(self, base: Extra, key: str, entry: Entry, fetched: int, read: int) -> None:
        """A copy of `entry` in the namespace whose shared `Extra` is `base`."""
        self.value = entry.value
        self.expiration = entry.expiration
        self.metadata = entry.metadata
        self.version = entry.version
        self.key = key
        self.fetched = fetched
        self.read = read
        self.extra = base
        # `prev` and `next` are set when it joins the ring (and deleted when it leaves it).

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Entry) and other.__class__ in (CachedEntry, CachedMiss, Entry):
            return (self.value, self.expiration, self.metadata, self.cache_status) == (
                other.value,
                other.expiration,
                other.metadata,
                other.cache_status,
            )
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, as Entry

    def __reduce__(self) -> tuple[type[Entry], tuple[object, ...]]:
        # copy.copy, copy.deepcopy and pickle all give the plain Entry this copy stands for:
        # the cache's own parts stay with the cache (and Entry's slots serve other names here).
        return Entry, (self.value, self.expiration, self.metadata, self.cache_status, self.version)

    @property
    def namespace(self) -> str:
        return self.extra.namespace

    @property
    def version(self) -> str | None:
        version = self._version
        return version if version is None or version.__class__ is str else str(version)

    @version.setter
    def version(self, version: str | None) -> None:
        self._version = compact_version(version)

    @property
    def hit(self) -> Entry:
        """What a hit on the copy answers: the copy itself, or `ABSENT_HIT` (a known miss)."""
        return ABSENT_HIT if self.cache_status is None else self

    def unexpired(self, now: int) -> bool:
        exp = self.expiration
        return exp is None or now < exp

    @property
    def missing(self) -> bool:
        """A negative copy: the key was known not to exist."""
        return self.cache_status is None

    def entry_as(self, status: str) -> Entry | None:
        """The copy as an `Entry` of `status` (None for a negative copy)."""
        if self.cache_status is None:
            return None
        return Entry(self.value, self.expiration, self.metadata, status, self.version)

    # -- the rarely needed parts ---------------------------------------------------------------
    def _extra(self) -> Extra:
        """The copy's own `Extra` (made now if it shares its namespace's)."""
        extra = self.extra
        if extra.base is None:
            extra = self.extra = Extra(extra.namespace, extra)
        return extra

    def _tidy(self) -> None:
        extra = self.extra
        if (
            extra.base is not None
            and extra.refresh is None
            and extra.born is None
            and extra.stale is None
        ):
            self.extra = extra.base

    @property
    def born(self) -> int:
        """When the copy was fetched (stale-if-error counts from here)."""
        born = self.extra.born
        return self.fetched if born is None else born

    def close(self) -> None:
        """Close the copy's window: it is no longer fresh, only servable stale (rule 7)."""
        if self.fetched != CLOSED:
            self._extra().born = self.fetched
            self.fetched = CLOSED

    @property
    def refresh(self) -> SlotFuture | None:
        """The fetch this copy is served `UPDATING` until, if any."""
        return self.extra.refresh

    def refreshing(self, fut: SlotFuture) -> Entry | None:
        """Serve the copy as `UPDATING` until `fut` (a fetch of its key) is done; returns the
        entry to serve meanwhile."""
        extra = self._extra()
        if extra.updating is None:
            extra.updating = self.entry_as(UPDATING)
        extra.refresh = fut
        fut.add_done_callback(self._refreshed)
        return extra.updating

    def _refreshed(self, fut: SlotFuture) -> None:
        extra = self.extra
        if fut is extra.refresh:
            extra.refresh = None
            extra.updating = None
            self._tidy()

    def stale_entry(self) -> Entry | None:
        """The copy as a `STALE` entry (built once while it is being served so)."""
        extra = self._extra()
        if extra.stale is None:
            extra.stale = self.entry_as(STALE)
        return extra.stale


class CachedMiss(CachedEntry):
    """A known miss: the key did not exist at the centre. Never handed out (a hit on it
    answers `ABSENT_HIT`); its value is empty, it has no expiration, metadata or version."""

    __slots__ = ()

    cache_status = None

    def __init__(self, base: Extra, key: str, fetched: int, read: int) -> None:
        self.value = b""
        self.expiration = None
        self.metadata = None
        self._version = None
        self.key = key
        self.fetched = fetched
        self.read = read
        self.extra = base


class Pending:
    """Writes in flight for one key; `contended` once two overlapped."""

    __slots__ = ("contended", "count")

    def __init__(self) -> None:
        self.count = 1
        self.contended = False
