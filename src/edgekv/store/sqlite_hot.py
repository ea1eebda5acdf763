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
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from edgekv._types import Entry

__all__ = ["HEADER_BYTES", "HotRows"]

HEADER_BYTES = 48  # one copy of the WAL-index header
DEFAULT_LIMIT = 4096

# Absent: the namespace exists and the key does not (cached as such: a hot miss is cheap too).
Row = Entry | None


class HotRows:
    """Rows of one database by (namespace id, key bytes), as of the header bytes in `stamp`."""

    __slots__ = ("_fd", "_limit", "_rows", "_stamp")

    def __init__(self, fd: int, limit: int = DEFAULT_LIMIT) -> None:
        self._fd = fd
        self._limit = limit
        self._rows: dict[tuple[str, bytes], Row] = {}
        self._stamp = b""

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

    def check(self) -> None:
        """Read the header: if anything was committed since the last look, forget every row.
        Call before reading a row that may then be `keep`-ed."""
        stamp = os.pread(self._fd, HEADER_BYTES, 0)
        if stamp != self._stamp or len(stamp) != HEADER_BYTES:
            self._rows.clear()
            self._stamp = stamp if len(stamp) == HEADER_BYTES else b""

    def get(self, key: tuple[str, bytes]) -> Row | Literal[False]:
        """The row kept for `key` (an Entry, or None for "known absent"), or False."""
        return self._rows.get(key, False)

    def keep(self, key: tuple[str, bytes], row: Row) -> None:
        """Keep `row`, read after the last `check` (rows read before it may be stale)."""
        if not self._stamp:
            return  # no valid header seen: nothing can be trusted to stay current
        rows = self._rows
        if len(rows) >= self._limit:
            rows.clear()
        rows[key] = row

    def close(self) -> None:
        """Forget every row and close the file (a later `check` raises OSError)."""
        fd, self._fd = self._fd, -1
        self._stamp = b""
        self._rows.clear()
        if fd >= 0:
            os.close(fd)
