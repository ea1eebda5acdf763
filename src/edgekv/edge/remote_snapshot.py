"""A central server's export read as a `Snapshot` (`RemoteStore.snapshot`).

`GET …/{ns}/export` streams the snapshot the centre holds in one read transaction; this side
reads it line by line as the caller asks for pages, so memory holds one page and the server's
send waits on TCP meanwhile. Closing closes the connection, which ends the export (and frees the
snapshot) on the server at once. A stream that stops before its trailer is `StoreUnavailable`:
never a silently short export.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator, Callable

import httpx
import orjson

from edgekv._exceptions import StoreError, StoreUnavailable
from edgekv._export import ExportEntry

__all__ = ["RemoteSnapshot"]

Fail = Callable[[int, dict[str, str], bytes], StoreError]


class RemoteSnapshot:
    """Open with `await RemoteSnapshot.open(...)`, read with `page()`, end with `close()`."""

    def __init__(self, url: str, response: httpx.Response) -> None:
        self.seq = 0
        self.title = ""
        self._url = url
        self._response: httpx.Response | None = response
        self._chunks: AsyncIterator[bytes] = response.aiter_raw()
        self._lines: list[bytes] = []
        self._rest = b""
        self._count = 0
        self._done = False

    @classmethod
    async def open(cls, http: httpx.AsyncClient, url: str, path: str, fail: Fail) -> RemoteSnapshot:
        try:
            response = await http.send(http.build_request("GET", path), stream=True)
        except httpx.TransportError as exc:
            raise StoreUnavailable(f"central server {url} unreachable: {exc!r}") from None
        snapshot = cls(url, response)
        try:
            if response.status_code != 200:
                body = await response.aread()
                lowered = {k.lower(): v for k, v in response.headers.items()}
                raise fail(response.status_code, lowered, body)
            line = await snapshot._next_line()
            header = None if line is None else orjson.loads(line)
            if not isinstance(header, dict) or header.get("edgekv_export") != 1:
                raise StoreUnavailable(f"central server {url} sent no export header")
            snapshot.seq = int(header["seq"])
            snapshot.title = str(header["namespace"].get("title", ""))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            await snapshot.close()
            raise StoreUnavailable(f"central server {url} sent a malformed export") from None
        except BaseException:
            await snapshot.close()
            raise
        return snapshot

    async def _next_line(self) -> bytes | None:
        while not self._lines:
            try:
                chunk = await anext(self._chunks, None)
            except httpx.HTTPError as exc:
                raise StoreUnavailable(f"export from {self._url} broke off: {exc!r}") from None
            if chunk is None:
                return None
            parts = (self._rest + chunk).split(b"\n")
            self._rest = parts.pop()
            parts.reverse()  # popped from the end, in order
            self._lines = parts
        return self._lines.pop()

    async def page(self, limit: int) -> list[ExportEntry]:
        out: list[ExportEntry] = []
        while not self._done and len(out) < limit:
            line = await self._next_line()
            if line is None:
                await self.close()
                raise StoreUnavailable(
                    f"export from {self._url} ended before its trailer ({self._count} entries)"
                )
            try:
                item = orjson.loads(line)
                if "edgekv_export_end" in item:
                    if item.get("count") != self._count:
                        raise ValueError("count")
                    self._done = True
                    break
                out.append(_entry(item))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, binascii.Error):
                await self.close()
                raise StoreUnavailable(
                    f"central server {self._url} sent a malformed export line"
                ) from None
            self._count += 1
        return out

    async def close(self) -> None:
        self._done = True
        response, self._response = self._response, None
        if response is not None:
            await response.aclose()


def _entry(item: dict[str, object]) -> ExportEntry:
    value = item["value"]
    if not isinstance(value, str):
        raise TypeError("value")
    data = base64.b64decode(value, validate=True) if item.get("base64") else value.encode()
    expiration = item.get("expiration")
    metadata = item.get("metadata")
    return ExportEntry(
        str(item["key"]),
        data,
        None if expiration is None else int(expiration),  # type: ignore[call-overload]
        None if metadata is None else orjson.dumps(metadata).decode(),
    )
