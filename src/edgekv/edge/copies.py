"""`CachedCopies`: the copies a `LocationCache` holds, found by namespace and key, in one LRU
order, within a byte budget (rule 9 of docs/locations.md). A mixin of `LocationCache`.

The order is an intrusive ring: each `CachedEntry` links to its older and newer neighbours,
with a sentinel (`_ring`) between the newest and the oldest, so a hit moves its copy to the
newest end in a few attribute stores and an eviction takes the oldest at once, with no
`(namespace, key)` tuple or ordered-dict node per copy (`edgekv.edge.slot` says why memory
matters here).

The budget counts, per copy: value, key, namespace id and metadata bytes plus
`ENTRY_OVERHEAD`, what the process holds for a copy besides those bytes (see below). A copy's
size is not stored: it is recomputed from the copy when it leaves (the same data, so the same
size), which saves an int object per copy.
"""

from __future__ import annotations

from edgekv._types import Entry
from edgekv.edge.slot import CLOSED, CachedEntry, CachedMiss, Extra
from edgekv.edge.stats import CacheStats

__all__ = ["ENTRY_OVERHEAD", "CachedCopies", "copy_size"]

# Counted per copy on top of its bytes: measured resident memory per copy (at 1,000,000 copies
# of 100-byte values, bench/bench_cache_memory.py) minus those bytes: the `CachedEntry`
# (112 B), its slot in the namespace's dict, the headers of the key and value objects, the
# version (an int of 32 B, `slot.compact_version`) and their allocator rounding. So the budget
# bounds the memory of a flood of tiny or negative entries too.
ENTRY_OVERHEAD = 272


def copy_size(namespace: str, key: str, value: bytes, metadata: str | None) -> int:
    """The bytes a copy counts against the budget."""
    size = ENTRY_OVERHEAD + len(namespace) + len(value)
    size += len(key) if key.isascii() else len(key.encode())
    if metadata is not None:
        size += len(metadata) if metadata.isascii() else len(metadata.encode())
    return size


def _sentinel() -> CachedEntry:
    ring = CachedMiss(Extra(""), "", CLOSED, CLOSED)
    ring.prev = ring.next = ring
    return ring


class CachedCopies:
    """Mixed into `LocationCache`: `_index` (namespace -> key -> copy), the LRU ring and the
    byte count, kept in `stats` (`entries`, `bytes_cached`, `evictions`)."""

    budget: int
    stats: CacheStats

    def _init_copies(self) -> None:
        self._index: dict[str, dict[str, CachedEntry]] = {}
        self._shared: dict[str, Extra] = {}  # each namespace in `_index`: its shared Extra
        self._ring = _sentinel()  # ring.next is the oldest copy, ring.prev the newest
        self._bytes = 0
        # Seconds are kept as one int object per second, not one per read that stored it:
        # `fetched` and `read` of many copies share it.
        self._second = 0

    def _slot(self, ns: str, key: str) -> CachedEntry | None:
        table = self._index.get(ns)
        return None if table is None else table.get(key)

    def _touch(self, slot: CachedEntry) -> None:
        """Make `slot` the most recently used copy (`LocationCache.get` inlines this)."""
        ring = self._ring
        after = slot.next
        if after is not ring:
            before = slot.prev
            before.next = after
            after.prev = before
            newest = ring.prev
            newest.next = slot
            slot.prev = newest
            slot.next = ring
            ring.prev = slot

    def _read_at(self, slot: CachedEntry, now: int) -> None:
        """Record a read of `slot` at second `now` (`LocationCache.get` inlines this)."""
        if slot.read != now:
            if now != self._second:
                self._second = now
            slot.read = self._second

    def _fill(
        self, ns: str, key: str, entry: Entry | None, fetched: int, read: int = CLOSED
    ) -> None:
        """Cache `entry` (None: known missing) as fetched at second `fetched` (and read at
        `read`, or when the copy it replaces was), then evict least recently used copies
        until the budget holds."""
        old = self._slot(ns, key)
        if old is not None:
            read = max(read, old.read)
            self._drop(ns, key)
        if entry is None:
            size = copy_size(ns, key, b"", None)
        else:
            if type(entry.value) is not bytes:  # a caller's bytearray must not change the copy
                entry = Entry(
                    bytes(entry.value), entry.expiration, entry.metadata, None, entry.version
                )
            size = copy_size(ns, key, entry.value, entry.metadata)
        if size > self.budget:
            return  # larger than the whole cache: served, never kept
        second = self._second
        if fetched != second and fetched != CLOSED:
            self._second = second = fetched
        if fetched == second:
            fetched = second
        if read == second:
            read = second
        table = self._index.get(ns)
        if table is None:
            table = self._index[ns] = {}
            self._shared[ns] = Extra(ns)
        shared = self._shared[ns]
        slot = (
            CachedMiss(shared, key, fetched, read)
            if entry is None
            else CachedEntry(shared, key, entry, fetched, read)
        )
        table[key] = slot
        ring = self._ring
        newest = ring.prev
        newest.next = slot
        slot.prev = newest
        slot.next = ring
        ring.prev = slot
        self._bytes += size
        stats = self.stats
        stats.entries += 1
        while self._bytes > self.budget:
            self._unlink(ring.next)
            stats.evictions += 1
        stats.bytes_cached = self._bytes

    def _drop(self, ns: str, key: str) -> None:
        slot = self._slot(ns, key)
        if slot is not None:
            self._unlink(slot)
            self.stats.bytes_cached = self._bytes

    def _unlink(self, slot: CachedEntry) -> None:
        before, after = slot.prev, slot.next
        before.next = after
        after.prev = before
        del slot.prev, slot.next  # a reader may still hold it: it must not hold its neighbours
        ns = slot.namespace
        table = self._index[ns]
        del table[slot.key]
        if not table:
            del self._index[ns]
            del self._shared[ns]
        self._bytes -= copy_size(ns, slot.key, slot.value, slot.metadata)
        self.stats.entries -= 1

    def _clear_copies(self) -> None:
        slot = self._ring.next
        while slot is not self._ring:  # unlinked one by one: no cycles left for the collector
            after = slot.next
            del slot.prev, slot.next
            slot = after
        self._index.clear()
        self._shared.clear()
        self._ring = _sentinel()
        self._bytes = 0
        self.stats.entries = 0
        self.stats.bytes_cached = 0
