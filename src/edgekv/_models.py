"""Result objects of the binding: field names as in Workers (`keys`, `list_complete`, ...).

`to_dict()` gives the JSON form, omitting what is unset, as every HTTP rendering does.
Records built in bulk are cheap to build: `KeyListEntry` is a NamedTuple the engines make from
their rows, the others plain (not frozen) slot classes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import orjson

__all__ = [
    "Change",
    "KeyListEntry",
    "ListResult",
    "Namespace",
    "ValueStream",
    "ValueWithMetadata",
]

_STREAM_CHUNK = 64 * 1024


class KeyListEntry(NamedTuple):
    """One key of a `list()` page: `.name`, `.expiration`, `.metadata`.

    Engines build these straight from their rows (a page holds a thousand), keeping the
    metadata as the JSON text that was stored; `.metadata` parses it when it is read.
    """

    name: str
    expiration: int | None = None
    metadata_json: str | None = None

    @property
    def metadata(self) -> Any:
        raw = self.metadata_json
        return None if raw is None else orjson.loads(raw)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.expiration is not None:
            out["expiration"] = self.expiration
        if self.metadata_json is not None:
            out["metadata"] = orjson.loads(self.metadata_json)
        return out


class Change(NamedTuple):
    """One change of a namespace's feed (`ns.changes()`): `.seq`, `.key`, `.op` (`"put"` or
    `"delete"`), and for puts `.version`, `.expiration` and `.metadata` (None when unset).

    A NamedTuple like `KeyListEntry`: engines build pages of a thousand straight from their
    rows, keeping the metadata as its stored JSON text (`.metadata` parses it)."""

    seq: int
    key: str
    op: Literal["put", "delete"]
    version: str | None = None
    expiration: int | None = None
    metadata_json: str | None = None

    @property
    def metadata(self) -> Any:
        raw = self.metadata_json
        return None if raw is None else orjson.loads(raw)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"seq": self.seq, "key": self.key, "op": self.op}
        if self.version is not None:
            out["version"] = self.version
        if self.expiration is not None:
            out["expiration"] = self.expiration
        if self.metadata_json is not None:
            out["metadata"] = orjson.loads(self.metadata_json)
        return out


@dataclass(slots=True)
class ListResult:
    keys: list[KeyListEntry]
    list_complete: bool
    cursor: str | None = None
    cache_status: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "keys": [k.to_dict() for k in self.keys],
            "list_complete": self.list_complete,
        }
        if self.cursor is not None:
            out["cursor"] = self.cursor
        if self.cache_status is not None:
            out["cacheStatus"] = self.cache_status
        return out


@dataclass(slots=True)
class ValueWithMetadata:
    """What `get_with_metadata` returns (`value` and `metadata` None for a missing key).
    `version` is the entry's version (None for a missing key), for conditional writes."""

    value: Any
    metadata: Any = None
    cache_status: str | None = None
    version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": self.value, "metadata": self.metadata}
        if self.cache_status is not None:
            out["cacheStatus"] = self.cache_status
        if self.version is not None:
            out["version"] = self.version
        return out


@dataclass(frozen=True, slots=True)
class Namespace:
    """A namespace as listed by the handle."""

    id: str
    title: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title}


@dataclass(slots=True)
class ValueStream:
    """The `"stream"` type of `get`: an async iterator of `bytes` chunks (`async for`)."""

    data: bytes
    chunk_size: int = _STREAM_CHUNK
    _pos: int = field(default=0, repr=False)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        if self._pos >= len(self.data):
            raise StopAsyncIteration
        start = self._pos
        self._pos = start + self.chunk_size
        return self.data[start : self._pos]

    async def read(self) -> bytes:
        """All that is left, at once."""
        rest = self.data[self._pos :]
        self._pos = len(self.data)
        return rest
