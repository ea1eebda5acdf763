"""`Request`, `Response` and `Headers`: the Fetch-API objects a worker sees, in Python spelling.

A `Request` built by the runtime wraps the ASGI scope and decodes lazily (headers, URL, body are
only built when the worker touches them) so that the hot path of a small GET costs little.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import AsyncIterable, Iterable, Iterator, Mapping, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import orjson

from edgekv._exceptions import ClientDisconnected
from edgekv._rules import encode_text
from edgekv.asgi.body import Body
from edgekv.asgi.types import Scope

__all__ = [
    "MAX_BODY_BYTES",
    "BodyTooLarge",
    "ClientDisconnected",
    "Headers",
    "Request",
    "Response",
    "encode_headers",
    "from_asgi",
]

MAX_BODY_BYTES = 100 * 1024 * 1024
"""Largest request body a worker may read (Workers' own limit on the free plan)."""

_TEXT_TYPE = "text/plain;charset=UTF-8"  # what the Fetch API sets for a string body
_JSON_TYPE = "application/json"
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class BodyTooLarge(Exception):
    """The request body exceeds `MAX_BODY_BYTES`; the runtime answers 413 if the worker lets it
    propagate."""


def _too_large(size: int) -> BodyTooLarge:
    return BodyTooLarge(f"request body of {size} bytes exceeds the limit of {MAX_BODY_BYTES}")


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 header name characters


def _check_header(name: object, value: object) -> tuple[str, str]:
    if not isinstance(name, str) or not isinstance(value, str):
        raise TypeError("header names and values must be str")
    # A CR or LF would let a value smuggle extra headers into the response.
    if _TOKEN.fullmatch(name) is None or "\r" in value or "\n" in value:
        raise ValueError(f"invalid header {name!r}: {value!r}")
    return name.lower(), value


class Headers(MutableMapping[str, str]):
    """Case-insensitive HTTP headers, like the Fetch API's `Headers`: `get(name)` joins repeated
    values with ", ", `get_all(name)` lists them, `append` adds one, `headers[name] = v` replaces.
    Names are kept lower-case."""

    __slots__ = ("_items",)

    def __init__(
        self, init: Mapping[str, str] | Iterable[tuple[str, str]] | Headers | None = None
    ) -> None:
        self._items: list[tuple[str, str]] = []
        if init is None:
            return
        if isinstance(init, Headers):
            self._items = list(init._items)
            return
        pairs = init.items() if isinstance(init, Mapping) else init
        for name, value in pairs:
            self._items.append(_check_header(name, value))

    @classmethod
    def _from_items(cls, items: list[tuple[str, str]]) -> Headers:
        """Wrap checked, lower-cased pairs as they are (no copy)."""
        headers = cls.__new__(cls)
        headers._items = items
        return headers

    @classmethod
    def _from_raw(cls, raw: Iterable[tuple[bytes, bytes]]) -> Headers:
        # ASGI servers hand over lower-case names already; latin-1 maps every byte.
        headers = cls.__new__(cls)
        headers._items = [(n.decode("latin-1").lower(), v.decode("latin-1")) for n, v in raw]
        return headers

    def get_all(self, name: str) -> list[str]:
        key = name.lower()
        return [v for n, v in self._items if n == key]

    def __getitem__(self, name: str) -> str:
        values = self.get_all(name)
        if not values:
            raise KeyError(name)
        return ", ".join(values)

    def __setitem__(self, name: str, value: str) -> None:
        key, value = _check_header(name, value)
        self._items = [(n, v) for n, v in self._items if n != key]
        self._items.append((key, value))

    def __delitem__(self, name: str) -> None:
        key = name.lower()
        kept = [(n, v) for n, v in self._items if n != key]
        if len(kept) == len(self._items):
            raise KeyError(name)
        self._items = kept

    def append(self, name: str, value: str) -> None:
        self._items.append(_check_header(name, value))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(n == name.lower() for n, _ in self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(n for n, _ in self._items))

    def __len__(self) -> int:
        return len(dict.fromkeys(n for n, _ in self._items))

    def raw_items(self) -> list[tuple[str, str]]:
        """Every (name, value) pair, repeated names included, in order."""
        return list(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


class Request:
    """An incoming HTTP request: `.method`, `.url`, `.headers`, and the body through
    `await .text()`, `await .json()`, `await .bytes()` (read once, then cached).

    `.path` (percent-decoded) and `.query` (first value of each parameter) are shortcuts for
    `urllib.parse.urlsplit(request.url)`. `Request(url, method=..., headers=..., body=...)`
    builds one by hand, e.g. to unit-test a handler.
    """

    __slots__ = ("_body", "_channel", "_headers", "_raw_headers", "_scope", "_url", "method")

    method: str

    def __init__(
        self,
        url: str,
        *,
        method: str = "GET",
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | Headers | None = None,
        body: str | bytes | None = None,
    ) -> None:
        parts = urlsplit(url)
        if not parts.scheme or not parts.netloc:
            raise ValueError(f"Request needs an absolute URL, got {url!r}")
        self.method = method.upper()
        self._url: str | None = url
        self._headers: Headers | None = Headers(headers)
        self._raw_headers: list[tuple[bytes, bytes]] = []
        self._body: bytes | None = body.encode() if isinstance(body, str) else (body or b"")
        self._channel: Body | None = None
        self._scope: MutableMapping[str, Any] = {
            "path": unquote(parts.path) or "/",
            "query_string": parts.query.encode(),
        }

    # -- head ------------------------------------------------------------------------------
    @property
    def headers(self) -> Headers:
        if self._headers is None:
            self._headers = Headers._from_raw(self._raw_headers)
        return self._headers

    @property
    def url(self) -> str:
        """The full URL, as the client asked for it (`http://host:port/path?query`)."""
        if self._url is None:
            scope = self._scope
            host = self.headers.get("host")
            if not host:
                server = scope.get("server") or ("localhost", None)
                host = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
            raw_path = scope.get("raw_path")
            path = (
                raw_path.decode("latin-1")
                if raw_path
                else quote(scope.get("root_path", "") + scope["path"])
            )
            query = scope.get("query_string", b"")
            url = f"{scope.get('scheme', 'http')}://{host}{path}"
            self._url = f"{url}?{query.decode('latin-1')}" if query else url
        return self._url

    @property
    def path(self) -> str:
        """The percent-decoded path, e.g. `/to-do/123`."""
        path: str = self._scope["path"]
        return path

    @property
    def query(self) -> dict[str, str]:
        """Query parameters, the first value of each (all of them: `urlsplit(request.url)`)."""
        query: dict[str, str] = {}
        for name, value in parse_qsl(self._scope.get("query_string", b"").decode("latin-1")):
            query.setdefault(name, value)
        return query

    # -- body ------------------------------------------------------------------------------
    async def bytes(self) -> bytes:
        """The whole body (read from the client on first call, at most `MAX_BODY_BYTES`)."""
        if self._body is None:
            self._body = await self._read_body()
        return self._body

    async def text(self) -> str:
        return (await self.bytes()).decode("utf-8", "replace")

    async def json(self) -> Any:
        """The body parsed as JSON; raises `ValueError` when it is not JSON."""
        return orjson.loads(await self.bytes())

    async def _read_body(self) -> builtins.bytes:  # `bytes` is the method here
        if self._channel is None:
            return b""
        declared = self.headers.get("content-length")
        length = int(declared) if declared and declared.isdigit() else None
        return await self._channel.read(MAX_BODY_BYTES, _too_large, declared=length)

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.url}>"


def from_asgi(scope: Scope, body: Body) -> Request:
    """The `Request` of an ASGI request (for the runtime), decoded lazily; its body is read
    from `body` on first use."""
    request = Request.__new__(Request)
    request.method = scope["method"]
    request._scope = scope
    request._channel = body
    request._raw_headers = scope["headers"]
    request._headers = None
    request._url = None
    request._body = None
    return request


class Response:
    """What a worker returns. `body` is `str` (sent as UTF-8, `text/plain;charset=UTF-8` unless a
    content type is given), bytes-like, `None` (empty), or an async iterable of bytes chunks
    (streamed, e.g. `await KV.get(key, "stream")`)."""

    __slots__ = ("body", "headers", "status")

    body: bytes | AsyncIterable[bytes]
    status: int
    headers: Headers

    def __init__(
        self,
        body: str | bytes | bytearray | memoryview | AsyncIterable[bytes] | None = None,
        status: int = 200,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | Headers | None = None,
    ) -> None:
        if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
            # The Fetch API refuses these too (RangeError); 1xx cannot be sent by a handler.
            raise ValueError(f"Response status must be an int in 200..599, got {status!r}")
        self.status = status
        if headers is None:  # the common case, kept cheap: no copy, no checks
            self.headers = Headers._from_items([])
            typed = False
        else:
            self.headers = Headers(headers)
            typed = "content-type" in self.headers
        if body is None:
            self.body = b""
        elif isinstance(body, str):
            self.body = encode_text(body)
            if not typed:
                self.headers._items.append(("content-type", _TEXT_TYPE))
        elif isinstance(body, bytes):
            self.body = body
        elif isinstance(body, bytearray | memoryview):
            self.body = bytes(body)
        elif isinstance(body, AsyncIterable):
            self.body = body
        else:
            raise TypeError(
                f"Response body must be str, bytes, None or an async iterable of bytes, "
                f"not {type(body).__name__}"
            )

    @classmethod
    def json(
        cls,
        data: Any,
        status: int = 200,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | Headers | None = None,
    ) -> Response:
        """`data` serialised as JSON, with `content-type: application/json`."""
        response = cls(orjson.dumps(data), status, headers)
        if headers is None or "content-type" not in response.headers:
            response.headers._items.append(("content-type", _JSON_TYPE))
        return response

    @classmethod
    def redirect(cls, url: str, status: int = 302) -> Response:
        """A redirect to `url` (status 301, 302, 303, 307 or 308), as `Response.redirect` in JS."""
        if status not in _REDIRECT_STATUSES:
            raise ValueError(f"redirect status must be one of 301, 302, 303, 307, 308: {status}")
        return cls(None, status, {"location": url})

    def text(self) -> str:
        """The body as text (for tests of handlers; not for streamed bodies)."""
        if not isinstance(self.body, bytes):
            raise TypeError("a streamed body has no text()")
        return self.body.decode("utf-8", "replace")

    def __repr__(self) -> str:
        return f"<Response {self.status}>"


def encode_headers(response: Response) -> list[tuple[bytes, bytes]]:
    """A response's headers as ASGI pairs, without `content-length`: the length is the
    runtime's business (computed for bytes, chunked for streams)."""
    return [
        (name.encode("latin-1"), value.encode("latin-1"))
        for name, value in response.headers._items
        if name != "content-length"
    ]
