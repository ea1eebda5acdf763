"""A raw HTTP/1.1 server on loopback (optionally over TLS) that answers every request with the
same bytes: for the tests of the location's client against answers a real centre never gives."""

from __future__ import annotations

import asyncio
import ssl


class CannedServer:
    """Answers each request with `answer` (the bytes as sent) and keeps the connection open,
    unless `close`; counts connections and requests. `context`: serve TLS."""

    def __init__(
        self, answer: bytes, *, context: ssl.SSLContext | None = None, close: bool = False
    ) -> None:
        self.answer = answer
        self.context = context
        self.close = close
        self.connections = 0
        self.requests = 0
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    @property
    def url(self) -> str:
        assert self.server is not None
        scheme = "http" if self.context is None else "https"
        return f"{scheme}://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aenter__(self) -> CannedServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.context)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                self.requests += 1
                writer.write(self.answer)
                await writer.drain()
                if self.close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()


def answer(status: int, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    """An HTTP/1.1 answer with Content-Length (JSON content type unless `headers` say)."""
    fields = {"content-length": str(len(body)), **(headers or {"content-type": "application/json"})}
    head = "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    return f"HTTP/1.1 {status} X\r\n{head}\r\n".encode() + body
