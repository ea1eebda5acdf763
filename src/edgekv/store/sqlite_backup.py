"""Whole-store backup and restore of the SQLite engine (`edgekv backup`, `edgekv restore`).

`backup` copies the store file with SQLite's online backup API in ONE step: the copy is read in
one read transaction, so it is the database exactly as of one commit, while the server keeps
running and writing (in WAL mode a reader never blocks the writer; a step-by-step backup would
restart whenever another connection writes). The copy is written to a temporary file beside the
output, checked (`PRAGMA quick_check`), switched to a single self-contained file (rollback
journal mode), synced, and only then renamed into place: a backup file is always complete.

`restore` checks a backup file the same way and writes it into a data directory through the
backup API (which takes the destination's locks and handles its WAL), then puts the file back in
WAL mode. Stop the server first: a running server's caches would not know the data changed.
Accounts, tokens (hashes), namespaces and entries are all in the file; `credentials.json` (the
plaintext admin token) is not, keep it yourself.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edgekv._exceptions import StoreError
from edgekv.store.sqlite import FILENAME, SCHEMA_VERSION

__all__ = ["BackupInfo", "backup", "restore"]

_BUSY_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class BackupInfo:
    """What a backup file holds."""

    path: Path
    size: int
    namespaces: int
    entries: int
    schema_version: int


def _check(conn: sqlite3.Connection, path: Path) -> BackupInfo:
    result = conn.execute("PRAGMA quick_check").fetchone()[0]
    if result != "ok":
        raise StoreError(f"{path} is damaged: {result}")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} has schema version {version}, newer than this edgekv's ({SCHEMA_VERSION})"
        )
    try:
        (namespaces,) = conn.execute("SELECT count(*) FROM namespaces").fetchone()
        (entries,) = conn.execute("SELECT count(*) FROM entries").fetchone()
    except sqlite3.DatabaseError:
        raise StoreError(f"{path} is not an edgekv store") from None
    return BackupInfo(path, path.stat().st_size, namespaces, entries, version)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can open a directory
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def backup(directory: Path | str, output: Path | str) -> BackupInfo:
    """Copy the store in `directory` to the file `output` (which must not exist), consistent
    as of one commit even while a server writes to it."""
    source = Path(directory) / FILENAME
    target = Path(output)
    if not source.is_file():
        raise StoreError(f"no edgekv store in {directory} (no {FILENAME})")
    if target.exists():
        raise StoreError(f"{target} exists already: give a new file name")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        src = sqlite3.connect(source, timeout=_BUSY_TIMEOUT)
        try:
            src.execute("PRAGMA query_only = ON")
            dst = sqlite3.connect(tmp)
            try:
                src.backup(dst)  # pages=-1: one step, one read transaction
                # One self-contained file (no -wal beside it); a store opened on it goes back
                # to WAL mode by itself.
                dst.execute("PRAGMA journal_mode = DELETE")
                info = _check(dst, tmp)
            finally:
                dst.close()
        finally:
            src.close()
        with tmp.open("rb+") as file:
            os.fsync(file.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except sqlite3.Error as exc:
        raise StoreError(f"backup of {source} failed: {exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return BackupInfo(target, info.size, info.namespaces, info.entries, info.schema_version)


def restore(backup_file: Path | str, directory: Path | str, *, force: bool = False) -> BackupInfo:
    """Write the backup into the store of `directory` (created if needed). A directory that
    already holds a store is refused unless `force` (its data is then replaced)."""
    source = Path(backup_file)
    data = Path(directory)
    target = data / FILENAME
    if not source.is_file():
        raise StoreError(f"no such backup file: {source}")
    if target.exists() and not force:
        raise StoreError(
            f"{data} already holds a store: stop its server and pass --force to replace it"
        )
    data.mkdir(parents=True, exist_ok=True)
    try:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            info = _check(src, source)
            dst = sqlite3.connect(target, timeout=_BUSY_TIMEOUT)
            try:
                src.backup(dst)
                dst.execute("PRAGMA journal_mode = WAL")
                dst.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise StoreError(f"restore of {source} failed: {exc}") from None
    return info
