"""Storage engines and the `Store` protocol they implement (public: docs/public-api.md).

- `Store` and its records (`Entry`, `KeyInfo`, `NamespaceInfo`, `TokenRecord`, `Clock`),
  defined in `edgekv._types`; the errors a store raises (`StoreError` and its subclasses,
  `edgekv._exceptions`). Implement `Store` to give the binding another engine.
- The engines: `memory.MemoryStore`, `sqlite.SQLiteStore`, `postgres.PostgresStore`.
- `open_store(target)`: the one place a target names an engine — None is memory, a
  `postgresql://` (or `postgres://`) URL is PostgreSQL, anything else a SQLite directory
  (`edgekv.open` adds `http://` / `https://`: a central server, through `edgekv.edge`);
  `is_database_url` and `shown` (a target for messages, without its password) for commands.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import cast

from edgekv._exceptions import (
    NamespaceNotFound,
    NamespaceTitleTaken,
    StoreError,
    StoreUnavailable,
    TooManyNamespaces,
)
from edgekv._types import (
    DEFAULT_FEED_HISTORY,
    Clock,
    Entry,
    KeyInfo,
    NamespaceInfo,
    Store,
    TokenRecord,
)

__all__ = [
    "Clock",
    "Entry",
    "KeyInfo",
    "NamespaceInfo",
    "NamespaceNotFound",
    "NamespaceTitleTaken",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "TokenRecord",
    "TooManyNamespaces",
    "is_database_url",
    "open_store",
    "shown",
]

_SCHEMES = ("postgresql://", "postgres://")


def is_database_url(target: str | Path) -> bool:
    """Whether `target` names a PostgreSQL database."""
    return isinstance(target, str) and target.startswith(_SCHEMES)


def shown(target: str | Path | None) -> str:
    """The target, for messages: a directory, or a PostgreSQL URL without its password."""
    if target is None:
        return "memory"
    text = str(target)
    if is_database_url(text):
        return re.sub(r"://([^:@/]*):[^@/]*@", r"://\1:***@", text)
    return text


async def open_store(
    target: str | Path | None,
    *,
    inline_reads: bool = True,
    feed_history: int = DEFAULT_FEED_HISTORY,
) -> Store:
    """Open the engine `target` names. `inline_reads` (SQLite): small point reads run on the
    event loop's thread, because a thread hop costs ten times the read (store/sqlite.py).
    `feed_history`: changes of the change feed kept per namespace."""
    if target is None:
        from edgekv.store.memory import MemoryStore

        return MemoryStore(feed_history=feed_history)
    if is_database_url(target):
        from edgekv.store.postgres import PostgresStore

        # cast: the engine's methods are typed as returning Awaitable, the protocol's as
        # coroutines; they are interchangeable for callers that only await them.
        return cast(Store, await PostgresStore.open(str(target), feed_history=feed_history))
    from edgekv.store.sqlite import SQLiteStore

    return await SQLiteStore.open(
        Path(target), inline_reads=inline_reads, feed_history=feed_history
    )
