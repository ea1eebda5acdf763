"""A namespace's change feed: `GET …/{ns}/changes?since=&prefix=&limit=&wait=` (a long poll).

Read permission is enough (a scoped token sees only its namespaces: the app checked both). The
answer is the envelope with `result: [change, …]` and `result_info: {count, cursor}`, the
cursor a string holding the decimal seq to pass back as `since`.

A waiting poll holds no more than its task: it ends at the first matching commit, at its
`wait`, when the client goes away (its task is cancelled at once, nothing is left behind) or
when the server begins to stop (an empty page, so the client asks again elsewhere).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
from typing import Any

from edgekv import wire
from edgekv._exceptions import ClientDisconnected, StoreError
from edgekv._types import ChangePage
from edgekv.api.context import Ctx
from edgekv.api.envelope import ApiError, ok
from edgekv.api.http import Response

__all__ = ["MAX_LIMIT", "MAX_WAIT", "list_changes", "parse_query"]

MAX_LIMIT = 1000
MAX_WAIT = 60.0
_DECIMAL = re.compile(r"[0-9]{1,19}")


def parse_query(query: dict[str, str]) -> tuple[int | None, str, int, float]:
    """(since, prefix, limit, wait) of the query, or a 400 naming what is wrong."""
    since = None
    raw_since = query.get("since")
    if raw_since is not None:
        if not _DECIMAL.fullmatch(raw_since):
            raise ApiError(
                400,
                wire.BAD_REQUEST,
                f"Invalid since of {raw_since!r}. Please specify a sequence number"
                " (a cursor this feed returned).",
            )
        since = int(raw_since)
    limit = MAX_LIMIT
    raw_limit = query.get("limit")
    if raw_limit is not None:
        try:
            limit = int(raw_limit.strip())
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_LIMIT:
            raise ApiError(
                400,
                wire.BAD_LIMIT,
                f"Invalid limit of {raw_limit!r}. Please specify an integer from 1 to {MAX_LIMIT}.",
            )
    wait = 0.0
    raw_wait = query.get("wait")
    if raw_wait is not None:
        try:
            wait = float(raw_wait.strip())
        except ValueError:
            wait = math.nan
        if not 0 <= wait <= MAX_WAIT:  # NaN fails too
            raise ApiError(
                400,
                wire.BAD_REQUEST,
                f"Invalid wait of {raw_wait!r}. Please specify a number of seconds from 0 to"
                f" {MAX_WAIT:g}.",
            )
    return since, query.get("prefix", ""), limit, wait


async def list_changes(ctx: Ctx) -> Response:
    since, prefix, limit, wait = parse_query(ctx.request.query)
    store = await ctx.services.store()
    poll = store.changes(ctx.namespace_id, since=since, prefix=prefix, limit=limit, wait=wait)
    if wait > 0:
        page = await _hold(ctx, asyncio.ensure_future(poll), since)
    else:
        page = await poll
    return ok(
        [c.to_dict() for c in page.changes],
        {"count": len(page.changes), "cursor": str(page.cursor)},
    )


async def _hold(ctx: Ctx, poll: asyncio.Future[ChangePage], since: int | None) -> ChangePage:
    gone = asyncio.ensure_future(ctx.request.body.disconnected())
    draining = asyncio.ensure_future(ctx.services.draining.wait())
    watched: set[asyncio.Future[Any]] = {poll, gone, draining}
    try:
        await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (gone, draining):
            task.cancel()
    if poll.done():
        return poll.result()  # raises what the store raised
    poll.cancel()
    with contextlib.suppress(asyncio.CancelledError, StoreError):
        await poll
    if gone.done() and not gone.cancelled():
        raise ClientDisconnected
    # The server is stopping: an empty page now rather than holding the shutdown.
    return ChangePage([], since if since is not None else await _head(ctx), 0)


async def _head(ctx: Ctx) -> int:
    return await (await ctx.services.store()).head(ctx.namespace_id)
