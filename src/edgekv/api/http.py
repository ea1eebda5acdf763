"""The bare ASGI request/response pair the REST API is built on.

Deliberately thinner than a framework's: the hot path (auth, one store read, one response)
should cost little more than the server itself (bench/bench_rest.py), routing must see the raw
path (keys may hold `%2F`), and bodies are read chunk by chunk under a limit (limits.py, over
the shared `edgekv.asgi.body.Body`).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from edgekv.asgi.body import Body
from edgekv.asgi.types import Receive, Scope, Send

__all__ = ["Request", "Response"]


class Request:
    """One HTTP request: method, raw path, lazily parsed query and headers, the body channel."""

    __slots__ = ("_headers", "_query", "body", "method", "raw_path", "scope")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self.body = Body(receive)
        self.method: str = scope["method"]
        # raw_path is optional in ASGI (the decoded path is the best we have then); some servers
        # keep the query string in it.
        raw = scope.get("raw_path")
        self.raw_path: bytes = scope["path"].encode() if raw is None else raw.split(b"?", 1)[0]
        self._query: dict[str, str] | None = None
        self._headers: dict[bytes, bytes] | None = None

    def has_unread_body(self) -> bool:
        """Whether body bytes may still be on the wire (the connection must then be closed)."""
        return self.body.unread(self.scope["headers"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        """Header names are lowercase (ASGI); a repeated header keeps its last value."""
        if self._headers is None:
            self._headers = dict(self.scope["headers"])
        return self._headers

    def header(self, name: bytes) -> str | None:
        value = self.headers.get(name)
        return None if value is None else value.decode("latin-1")

    @property
    def query(self) -> dict[str, str]:
        """Query parameters, percent-decoded as UTF-8; a repeated one keeps its first value."""
        if self._query is None:
            qs: bytes = self.scope.get("query_string", b"")
            out: dict[str, str] = {}
            if qs:
                for name, value in parse_qsl(qs.decode("utf-8", "replace"), keep_blank_values=True):
                    out.setdefault(name, value)
            self._query = out
        return self._query


class Response:
    """A complete response; `close` asks the server to drop the connection afterwards (used
    when a request body was refused before it was read to its end)."""

    __slots__ = ("body", "close", "headers", "status")

    def __init__(
        self,
        status: int,
        body: bytes = b"",
        headers: list[tuple[bytes, bytes]] | None = None,
        *,
        close: bool = False,
    ) -> None:
        self.status = status
        self.body = body
        self.headers = headers if headers is not None else []
        self.close = close

    async def send(self, send: Send) -> None:
        headers = self.headers  # a response is sent once: its own list can take these
        headers.append((b"content-length", str(len(self.body)).encode()))
        if self.close:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})
