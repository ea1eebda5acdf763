"""Request bodies, read from ASGI `http.request` messages chunk by chunk under a byte limit.

`Body` is the body channel of one request, shared by the REST server (`edgekv.api.limits` adds
its 413 envelope and Content-Length parsing) and the worker runtime (`edgekv.workers.http`).
Nothing past a limit is ever kept: a body over its limit raises the caller's `too_large(size)`
as soon as its declared length or the bytes received so far exceed the limit by more than
`drain` bytes. Up to `drain` bytes past the limit are read and dropped first, so that clients
which read the answer only once they have sent everything (httpx, the SDKs) see the 413 instead
of a reset connection.

A response sent while body bytes may still be on the wire must close the connection
(`Body.unread`): the server would otherwise read them as the next request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable

from edgekv._exceptions import ClientDisconnected
from edgekv.asgi.types import Receive

__all__ = ["Body", "TooLarge"]

TooLarge = Callable[[int], Exception]
"""Makes the error of a body over its limit, given the size seen (declared or received)."""


class Body:
    """The body of one ASGI request: read once, in chunks (`stream`) or whole (`read`).
    `done` is set once it was read to its end."""

    __slots__ = ("done", "receive")

    def __init__(self, receive: Receive) -> None:
        self.receive = receive
        self.done = False

    async def stream(
        self, limit: int, too_large: TooLarge, *, declared: int | None = None, drain: int = 0
    ) -> AsyncIterator[bytes]:
        """The body's chunks as they arrive; raises `too_large(size)` once over `limit` (after
        draining at most `drain` more bytes), `ClientDisconnected` if the client goes away."""
        if declared is not None and declared > limit + drain:
            raise too_large(declared)
        receive = self.receive
        received = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected("the client disconnected before sending the whole body")
            chunk: bytes = message.get("body", b"")
            more = message.get("more_body", False)
            received += len(chunk)
            if received > limit:
                received = await self._drain(received, more, limit + drain)
                raise too_large(max(received, declared or 0))
            if chunk:
                yield chunk
            if not more:
                self.done = True
                return

    async def read(
        self, limit: int, too_large: TooLarge, *, declared: int | None = None, drain: int = 0
    ) -> bytes:
        """The whole body (see `stream`)."""
        chunks = [c async for c in self.stream(limit, too_large, declared=declared, drain=drain)]
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _drain(self, received: int, more: bool, allowance: int) -> int:
        """Read and drop the rest of a refused body while it stays within `allowance`; returns
        how many bytes arrived in all."""
        while more and received <= allowance:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected("the client disconnected before sending the whole body")
            received += len(message.get("body", b""))
            more = message.get("more_body", False)
        if not more:
            self.done = True
        return received

    async def disconnected(self) -> None:
        """Return once the client has gone away, reading (and dropping) what is left of the
        body first: for a handler that holds a request open (a long poll) and must notice."""
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                return
            if not message.get("more_body", False):
                self.done = True

    def unread(self, headers: Iterable[tuple[bytes, bytes]]) -> bool:
        """Whether body bytes may still be on the wire (the connection must then be closed),
        given the request's raw headers."""
        if self.done:
            return False
        for name, value in headers:
            if name == b"transfer-encoding" or (
                name == b"content-length" and value.strip() not in (b"", b"0")
            ):
                return True
        return False
