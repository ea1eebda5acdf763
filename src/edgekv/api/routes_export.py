"""`GET …/{ns}/export`: the namespace as one consistent snapshot, streamed as NDJSON.

The snapshot (`Store.snapshot`: one read transaction) is opened before the response starts, so
an unknown namespace or an unreachable store is still an ordinary error envelope. Then the
header, one page of lines per chunk, and the trailer. Memory is flat: a page is read only once
the previous chunk was handed to the server. A client that goes away (seen on `receive()` as
`http.disconnect`, or as a failing `send`) ends the stream and frees the snapshot at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from edgekv._export import MEDIA_TYPE, encode_entries, encode_header, encode_trailer
from edgekv._transfer import Export
from edgekv.api.context import Ctx, namespace_not_found
from edgekv.api.http import Response
from edgekv.asgi import Body, Send

__all__ = ["StreamingResponse", "export_namespace"]

log = logging.getLogger("edgekv.api")


class StreamingResponse(Response):
    """A response whose body is produced chunk by chunk (no Content-Length: chunked on the
    wire). `on_close` runs once the stream ended for any reason, the client leaving included."""

    __slots__ = ("_chunks", "_on_close", "_request_body", "sent")

    def __init__(
        self,
        status: int,
        chunks: AsyncIterator[bytes],
        headers: list[tuple[bytes, bytes]],
        *,
        request_body: Body,
        on_close: Callable[[], Awaitable[None]],
    ) -> None:
        super().__init__(status, b"", headers)
        self._chunks = chunks
        self._request_body = request_body
        self._on_close = on_close
        self.sent = 0

    async def send(self, send: Send) -> None:
        stream = asyncio.ensure_future(self._stream(send))
        gone = asyncio.ensure_future(self._request_body.disconnected())
        try:
            await asyncio.wait({stream, gone}, return_when=asyncio.FIRST_COMPLETED)
            if stream.done() and not stream.cancelled() and stream.exception() is not None:
                # Headers are out: the client sees a stream without its trailer (incomplete).
                log.warning("export stream failed: %r", stream.exception())
        finally:
            for task in (stream, gone):
                task.cancel()
            for task in (stream, gone):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self._on_close()

    async def _stream(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        async for chunk in self._chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            self.sent += len(chunk)
            # A server may accept chunks without suspending (the memory engine neither):
            # yield once per chunk so the disconnect watcher gets to run.
            await asyncio.sleep(0)
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _lines(export: Export) -> AsyncIterator[bytes]:
    assert export.header is not None
    yield encode_header(export.header)
    async for rows in export.pages():
        yield encode_entries(rows)
    yield encode_trailer(export.count)


async def export_namespace(ctx: Ctx) -> Response:
    store = await ctx.services.store()
    info = await store.get_namespace(ctx.account_id, ctx.namespace_id)
    if info is None:
        raise namespace_not_found()
    export = Export(ctx.services.namespace(ctx.namespace_id), title=info.title)
    await export.open()
    return StreamingResponse(
        200,
        _lines(export),
        [(b"content-type", MEDIA_TYPE.encode()), (b"cache-control", b"no-store")],
        request_body=ctx.request.body,
        on_close=export.aclose,
    )
