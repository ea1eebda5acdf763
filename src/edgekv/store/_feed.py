"""The change feed's parts every engine shares: the long poll, page building, history checks.

An engine supplies one snapshot read, `read(since, scan) -> (head, floor, rows)`: the
namespace's newest seq, its floor (the newest seq no longer kept) and up to `scan` raw rows
`(seq, key bytes, deleted, expiration, metadata)` with seq > since, in seq order (no rows when
`since` is None). `poll` turns that into a `ChangePage` with the semantics of
versions-and-changes.md, waiting on `FeedWaiters` (woken in-process after each commit, and by
PostgreSQL's LISTEN/NOTIFY for other servers) instead of polling.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from edgekv._exceptions import HistoryGone, SinceAhead
from edgekv._models import Change
from edgekv._types import ChangePage, version_of

__all__ = ["PREFIX_SCAN", "FeedWaiters", "RawChange", "Read", "check_since", "poll"]

RawChange = tuple[int, bytes, Any, int | None, str | None]
Read = Callable[[int | None, int], Awaitable[tuple[int, int, Sequence[RawChange]]]]

# With a prefix, rows are read this many at a time (the non-matching ones are skipped), and at
# most _MAX_WINDOWS windows per request: an empty page then still advances the cursor.
PREFIX_SCAN = 5000
_MAX_WINDOWS = 20


def effective_floor(head: int, floor: int, history: int) -> int:
    """History older than 2N changes counts as gone even before the trimmer got to it, so
    "more than 2N changes after `since`" is always a 410, whatever the trimmer's timing."""
    return max(floor, head - 2 * history)


def check_since(since: int, head: int, floor: int) -> None:
    if since < floor:
        raise HistoryGone(floor + 1)
    if since > head:
        raise SinceAhead(since, head)


def _change(row: RawChange) -> Change:
    seq, key, deleted, expiration, metadata = row
    name = key.decode()
    if deleted:
        return Change(seq, name, "delete")
    return Change(seq, name, "put", version_of(seq), expiration, metadata)


def _page(
    rows: Sequence[RawChange], since: int, prefix: bytes, limit: int, head: int
) -> tuple[ChangePage, bool]:
    """The page of `rows` and whether every change up to the head was examined."""
    out: list[Change] = []
    cursor = since
    if not prefix:
        out = [_change(r) for r in rows[:limit]]
        if out:
            cursor = out[-1].seq
        return ChangePage(out, cursor, head), len(rows) < limit
    for row in rows:
        cursor = row[0]
        if row[1].startswith(prefix):
            out.append(_change(row))
            if len(out) == limit:
                return ChangePage(out, cursor, head), False
    if out:
        cursor = out[-1].seq  # the spec's cursor: the last change returned
    return ChangePage(out, cursor, head), len(rows) < PREFIX_SCAN


async def poll(
    read: Read,
    waiters: FeedWaiters,
    namespace_id: str,
    *,
    since: int | None,
    prefix: str,
    limit: int,
    wait: float,
    history: int,
) -> ChangePage:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    raw_prefix = prefix.encode()
    scan = PREFIX_SCAN if raw_prefix else limit
    head, floor, rows = await read(since, scan)
    if since is None:
        if wait <= 0:
            return ChangePage([], head, head)
        since = head
    check_since(since, head, effective_floor(head, floor, history))
    windows = 1
    while True:
        page, complete = _page(rows, since, raw_prefix, limit, head)
        if page.changes or (wait <= 0 and complete):
            return page
        if not complete:
            if windows >= _MAX_WINDOWS:
                return page  # an empty page whose cursor moved on: the caller asks again
        else:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return page
            await waiters.wait(namespace_id, page.cursor, remaining)
        since = page.cursor
        head, floor, rows = await read(since, scan)
        windows += 1
        check_since(since, head, effective_floor(head, floor, history))


class FeedWaiters:
    """Long polls waiting for a namespace's head to pass their cursor. `notify` (on the event
    loop, after a commit) records the newest head seen and wakes those it concerns; a waiter
    whose cursor is already behind the recorded head returns at once, so a commit between a
    poll's read and its wait is never missed. A waiter that is cancelled (its client went
    away) or times out leaves nothing behind."""

    def __init__(self) -> None:
        self._heads: dict[str, int] = {}
        self._waiting: dict[str, dict[asyncio.Future[None], int]] = {}

    def notify(self, namespace_id: str, head: int) -> None:
        if head <= self._heads.get(namespace_id, -1):
            return
        self._heads[namespace_id] = head
        waiting = self._waiting.get(namespace_id)
        if waiting:
            for fut, after in waiting.items():
                if after < head and not fut.done():
                    fut.set_result(None)

    def forget(self, namespace_id: str) -> None:
        """The namespace is gone: wake its waiters (their next read says 404)."""
        self._heads.pop(namespace_id, None)
        for fut in self._waiting.get(namespace_id, {}):
            if not fut.done():
                fut.set_result(None)

    def wake_all(self) -> None:
        """Wake every waiter to read again (notifications may have been missed)."""
        for waiting in self._waiting.values():
            for fut in waiting:
                if not fut.done():
                    fut.set_result(None)

    def waited(self) -> list[str]:
        """The namespaces someone is waiting on."""
        return list(self._waiting)

    def __len__(self) -> int:
        return sum(len(w) for w in self._waiting.values())

    async def wait(self, namespace_id: str, after: int, seconds: float) -> None:
        """Return once a head newer than `after` was notified, or after `seconds`."""
        if self._heads.get(namespace_id, -1) > after:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiting = self._waiting.setdefault(namespace_id, {})
        waiting[fut] = after
        try:
            await asyncio.wait_for(fut, seconds)
        except TimeoutError:
            pass
        finally:
            waiting.pop(fut, None)
            if not waiting and self._waiting.get(namespace_id) is waiting:
                del self._waiting[namespace_id]
