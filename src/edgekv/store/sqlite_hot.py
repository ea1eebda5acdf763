"""Recently read rows of a SQLite store, valid until anyone commits anything.

A point read costs a statement execution (~6 µs); a hot key is read again and again with
nothing committed in between. The WAL-index header at the start of the database's `-shm` file
changes at every commit, by any connection of any process (it holds the WAL's frame count,
checksums and a change counter: sqlite.org/walformat.html, "The WAL-Index Header"), and a
checkpoint that restarts the WAL rewrites it too. So 48 bytes read from that file (one
`pread`, under 1 µs) say whether the rows read since those bytes were last seen are still the
database's rows: unchanged bytes, nothing committed since; changed bytes, the rows are dropped.

Order matters: the header is read *before* the row, so a row read after a commit that the
header did not see yet is dropped at the next look (one needless re-read, never a stale row).
A write acknowledged before a read starts has updated the header before it was acknowledged,
so the read sees it. The file is read with `pread`, not mapped: a truncated file gives a short
read (taken as "changed"), never a fault.

One `HotRows` per reading thread (the store keeps them beside its per-thread connections), so
the check and the fill never race with another thread's. Bounded: past `limit` rows it starts
afresh.

A look that finds nothing costs the header read and a fill (~2 µs on a ~9 µs read), a hit saves
~5.5 µs: keeping rows pays from about one hit in four. So it measures itself: over each
`WINDOW` looks with fewer hits than that, it goes dormant for `DORMANT` reads (no header read,
nothing kept), then tries again. A workload of cold reads costs a counter, a hot one gains.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from edgekv._types import Entry

__all__ = ["DORMANT", "HEADER_BYTES", "WINDOW", "HotRows"]

HEADER_BYTES = 48  # one copy of the WAL-index header
DEFAULT_LIMIT = 4096
WINDOW = 1024  # looks over which the hit rate is judged
DORMANT = 8 * WINDOW  # reads made without looking after a window of too few hits

# Absent: the namespace exists and the key does not (cached as such: a hot miss is cheap too).
Row = Entry | None


class HotRows:
    """Rows of one database by (namespace id, key bytes), as of the header bytes in `stamp`."""

    __slots__ = ("_dormant", "_fd", "_hits", "_limit", "_looks", "_rows", "_stamp")

    def __init__(self, fd: int, limit: int = DEFAULT_LIMIT) -> None:
        self._fd = fd
        self._limit = limit
        self._rows: dict[tuple[str, bytes], Row] = {}
        self._stamp = b""
        self._looks = 0
        self._hits = 0
        self._dormant = 0  # reads left before looking again

    @classmethod
    def open(cls, database: Path, limit: int = DEFAULT_LIMIT) -> HotRows | None:
        """Over `database`'s `-shm` file, which exists while a connection has the database
        open in WAL mode (open one first, and keep it open for as long as this is used); None
        when there is no such file (then rows are not kept)."""
        try:
            fd = os.open(f"{database}-shm", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        return cls(fd, limit)

    def look(self, key: tuple[str, bytes]) -> Row | Literal[False]:
        """The row kept for `key` (an Entry, or None for "known absent"), or False: then read
        it, and `keep` it. Reads the header first: if anything was committed since the last
        look, every row is forgotten."""
        if self._dormant:
            self._dormant -= 1
            return False
        stamp = os.pread(self._fd, HEADER_BYTES, 0)
        rows = self._rows
        if stamp != self._stamp or len(stamp) != HEADER_BYTES:
            rows.clear()
            self._stamp = stamp if len(stamp) == HEADER_BYTES else b""
        row: Row | Literal[False] = rows.get(key, False)
        self._looks += 1
        if row is not False:
            self._hits += 1
        if self._looks >= WINDOW:
            if self._hits * 4 < self._looks:  # too few hits to pay for looking
                self._dormant = DORMANT
                self._stamp = b""  # nothing is kept meanwhile
                rows.clear()
            self._looks = self._hits = 0
        return row

    def keep(self, key: tuple[str, bytes], row: Row) -> None:
        """Keep `row`, read after the last `look` (rows read before it may be stale)."""
        if not self._stamp:
            return  # no valid header seen: nothing can be trusted to stay current
        rows = self._rows
        if len(rows) >= self._limit:
            rows.clear()
        rows[key] = row

    def close(self) -> None:
        """Forget every row and close the file (a later `look` raises OSError)."""
        fd, self._fd = self._fd, -1
        self._stamp = b""
        self._dormant = 0
        self._rows.clear()
        if fd >= 0:
            os.close(fd)
