"""Writers that keep writing while an export runs, and the namespace's exact state at a seq
rebuilt from its change feed: what the consistency tests of export compare against.

Every put carries metadata `{"w": <write id>}` and a value derived from that id (`value_of`),
so the feed (which has metadata but no values) tells exactly what each key held after every
change. `expected_at(ns, seq)` replays the feed up to `seq`; `state_of(ns)` reads a namespace
back through its own export.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from edgekv import KVNamespace

__all__ = ["Load", "State", "expected_at", "populate", "state_of", "value_of"]

State = dict[str, tuple[bytes, int | None, Any]]
KEYS = 3000
FAR = 2_000_000_000  # an expiration well after every test clock


def key_of(i: int) -> str:
    # Spread over byte order (some multi-byte), so writes land before and after the cursor.
    return f"{'é' if i % 7 == 0 else 'k'}{(i * 7919) % 100_003:06}"


def value_of(write_id: str) -> bytes:
    digest = hashlib.sha256(write_id.encode()).digest()
    if digest[0] % 4 == 0:
        return digest * 3 + b"\xff\x80"  # not UTF-8: exported as base64
    return f"value of {write_id} ".encode() * (1 + digest[1] % 4)


def item_of(key: str, write_id: str) -> dict[str, Any]:
    """A put's arguments: the value, metadata naming the write, an expiration on some."""
    out: dict[str, Any] = {"key": key, "value": value_of(write_id), "metadata": {"w": write_id}}
    if hashlib.sha256(write_id.encode()).digest()[2] % 5 == 0:
        out["expiration"] = FAR - len(write_id)
    return out


async def populate(ns: KVNamespace, n: int = KEYS) -> None:
    """`n` keys written in bulk before the export starts."""
    for start in range(0, n, 1000):
        await ns.put_many(
            [item_of(key_of(i), f"init-{i}") for i in range(start, min(n, start + 1000))]
        )


@dataclass
class Load:
    """`writers` tasks putting, overwriting and deleting keys until `stop()`."""

    ns: KVNamespace
    writers: int = 3
    done: int = 0
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _wrote: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self) -> Load:
        self.tasks = [asyncio.create_task(self._write(w)) for w in range(self.writers)]
        return self

    async def _write(self, writer: int) -> None:
        rng = random.Random(writer)
        n = 0
        while not self._stopping.is_set():
            n += 1
            key = key_of(rng.randrange(KEYS + 500))
            if rng.random() < 0.2:
                await self.ns.delete(key)
            else:
                item = item_of(key, f"w{writer}-{n}")
                await self.ns.put(
                    key,
                    item["value"],
                    metadata=item["metadata"],
                    expiration=item.get("expiration"),
                )
            self.done += 1
            self._wrote.set()
            await asyncio.sleep(0)

    async def until(self, n: int) -> None:
        """Return once `n` writes were acknowledged in all."""
        while self.done < n:
            self._wrote.clear()
            await self._wrote.wait()

    async def stop(self) -> None:
        self._stopping.set()
        await asyncio.gather(*self.tasks)


async def expected_at(ns: KVNamespace, seq: int) -> State:
    """The live state of `ns` just after change `seq`, replayed from its change feed."""
    state: State = {}
    if seq == 0:
        return state
    changes: AsyncIterator[Any] = ns.changes(since=0)
    async with contextlib.aclosing(changes):  # type: ignore[type-var]
        async for change in changes:
            if change.seq > seq:
                break
            if change.op == "delete":
                state.pop(change.key, None)
            else:
                write_id = change.metadata["w"]
                state[change.key] = (value_of(write_id), change.expiration, change.metadata)
            if change.seq == seq:
                break
    return state


async def state_of(ns: KVNamespace) -> State:
    """Every live entry of `ns`, read through its export."""
    return {e.key: (e.value, e.expiration, e.metadata) async for e in ns.export()}
