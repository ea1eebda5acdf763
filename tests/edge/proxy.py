"""A TCP relay on loopback in front of a central server, that a test can cut and restore: the
path a location's feed takes, so "the feed is unreachable while the centre answers" is a real
network fault (connections reset, new ones refused by closing them at once)."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

__all__ = ["Relay"]


class Relay:
    """`async with Relay(url) as relay:` forwards `relay.url` to `url`; `cut()` resets every
    open connection and closes new ones at once; `restore()` forwards again."""

    def __init__(self, target_url: str) -> None:
        parts = urlsplit(target_url)
        assert parts.hostname and parts.port
        self._target = (parts.hostname, parts.port)
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self.cut_off = False
        self.connections = 0
        self.url = ""

    async def __aenter__(self) -> Relay:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.cut()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def cut(self) -> None:
        self.cut_off = True
        for writer in list(self._open):
            self._abort(writer)

    def restore(self) -> None:
        self.cut_off = False

    def _abort(self, writer: asyncio.StreamWriter) -> None:
        self._open.discard(writer)
        transport = writer.transport
        with contextlib.suppress(Exception):
            transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut_off:
            self._abort(writer)
            return
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            self._abort(writer)
            return
        self._open.update((writer, up_writer))
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )
        self._abort(writer)
        self._abort(up_writer)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if self.cut_off:
                    break
                writer.write(data)
                await writer.drain()
        finally:
            self._abort(writer)
