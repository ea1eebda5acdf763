"""store/__init__.py: the one place a target names an engine."""

from __future__ import annotations

from pathlib import Path

from edgekv.store import is_database_url, open_store, shown
from edgekv.store.memory import MemoryStore
from edgekv.store.sqlite import SQLiteStore


async def test_targets_name_their_engines(tmp_path: Path) -> None:
    memory = await open_store(None)
    assert isinstance(memory, MemoryStore)
    await memory.aclose()
    directory = tmp_path / "new" / "data"
    sqlite = await open_store(directory)
    assert isinstance(sqlite, SQLiteStore) and directory.is_dir()
    await sqlite.aclose()
    sqlite = await open_store(str(directory), inline_reads=False)
    assert isinstance(sqlite, SQLiteStore)
    await sqlite.aclose()


def test_database_urls_and_how_targets_are_shown() -> None:
    assert is_database_url("postgresql://u@h/db") and is_database_url("postgres://h/db")
    assert not is_database_url("./postgresql") and not is_database_url(Path("postgres:"))
    assert shown("postgresql://kv:s3cret@db:5432/kv") == "postgresql://kv:***@db:5432/kv"
    assert shown("postgres://kv@db/kv") == "postgres://kv@db/kv"
    assert shown(Path("data")) == "data" and shown(None) == "memory"
