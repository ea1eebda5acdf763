"""How `RemoteStore` sends one request: the `Transport` seam (as HTTPX's `_transports/base.py`).

A transport takes a request the client built (method, percent-encoded target below the centre's
URL, body, content type) and returns the `Answer`; it raises nothing but `StoreUnavailable`
(503) for a centre it cannot reach, time out on, or cannot understand at the HTTP level — each
transport maps its own lower-level errors in one place (as HTTPX's `map_httpcore_exceptions`).
Reading the answer (status, envelope, headers) is the client's job, done once for every
transport (`edgekv.edge.remote`).

Two transports:

- `PoolTransport` — the lean keep-alive pool of `edgekv.edge.http1` (the default, for `http://`
  and `https://` centres: measured several times httpx's throughput for reads, ten times for
  writes at concurrency 64; over TLS, bench/results/edge.md).
- `HttpxTransport` — an `httpx.AsyncClient` (`fast_client=False`, or a custom httpx transport,
  e.g. one a test provides).

`open_transport` chooses one, once, when the client is made.
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.request
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from edgekv._exceptions import StoreUnavailable
from edgekv.edge.http1 import Answer, Http1Pool, ProtocolError

__all__ = [
    "Answer",
    "HttpxTransport",
    "PoolTransport",
    "Transport",
    "httpx_client",
    "open_transport",
]


class Transport(Protocol):
    """Sends one request to the centre; raises only `StoreUnavailable`."""

    url: str

    async def request(
        self,
        method: str,
        target: str,
        body: bytes,
        content_type: str | None,
        headers: dict[str, str] | None = None,
        deadline: float | None = None,
    ) -> Answer:
        """`headers`: more request headers (If-Match...); `deadline`: seconds for this exchange
        instead of the transport's timeout (a long poll of the change feed)."""
        ...

    async def aclose(self) -> None: ...


def _unreachable(url: str, exc: BaseException) -> StoreUnavailable:
    return StoreUnavailable(
        f"central server {url} unreachable: {type(exc).__name__} {exc}".rstrip()
    )


class PoolTransport:
    """Over `Http1Pool`: its failures (refused or reset connections, timeouts, answers that are
    not HTTP/1.1) become `StoreUnavailable`."""

    def __init__(self, url: str, pool: Http1Pool) -> None:
        self.url = url
        self._pool = pool

    async def request(
        self,
        method: str,
        target: str,
        body: bytes,
        content_type: str | None,
        headers: dict[str, str] | None = None,
        deadline: float | None = None,
    ) -> Answer:
        try:
            if deadline is None:
                return await self._pool.request(method, target, body, content_type, headers)
            # The pool's own timeout still applies: a deadline here can only shorten it.
            async with asyncio.timeout(deadline):
                return await self._pool.request(method, target, body, content_type, headers)
        except (OSError, TimeoutError, ProtocolError, ValueError, asyncio.IncompleteReadError) as e:
            raise _unreachable(self.url, e) from None

    async def aclose(self) -> None:
        await self._pool.aclose()


class HttpxTransport:
    """Over `httpx.AsyncClient`. httpx's timeouts are per phase (connect, each read, ...): a
    server trickling bytes could outlast them, so each exchange also gets one deadline."""

    def __init__(self, url: str, client: httpx.AsyncClient, timeout: float) -> None:
        self.url = url
        self._client = client
        self._timeout = timeout

    async def request(
        self,
        method: str,
        target: str,
        body: bytes,
        content_type: str | None,
        headers: dict[str, str] | None = None,
        deadline: float | None = None,
    ) -> Answer:
        sent = dict(headers or {})
        if content_type is not None:
            sent["content-type"] = content_type
        content = body if body or method in ("POST", "PUT") else None  # PUT "" has a length
        timeout = self._timeout if deadline is None else deadline
        try:
            async with asyncio.timeout(timeout):
                response = await self._client.request(
                    method,
                    target,
                    content=content,
                    headers=sent,
                    timeout=httpx.USE_CLIENT_DEFAULT if deadline is None else deadline,
                )
        except (httpx.TransportError, TimeoutError) as exc:
            raise _unreachable(self.url, exc) from None
        lowered = {k.lower(): v for k, v in response.headers.items()}
        return Answer(response.status_code, lowered, response.content)

    async def aclose(self) -> None:
        await self._client.aclose()


def _proxied(url: str) -> bool:
    """Whether the environment routes this `https://` URL through a proxy (httpx honoured it
    before the pool spoke TLS; `http://` centres always went to the pool directly)."""
    if not url.startswith("https://"):
        return False
    proxies = urllib.request.getproxies_environment()
    if not (proxies.get("https") or proxies.get("all")):
        return False
    return not bool(urllib.request.proxy_bypass(urlsplit(url).hostname or ""))


def open_transport(
    url: str,
    *,
    headers: dict[str, str],
    timeout: float,
    connect_timeout: float,
    max_connections: int,
    fast_client: bool = True,
    transport: httpx.AsyncBaseTransport | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> Transport:
    """The transport to `url` (no trailing slash): the pool, unless `fast_client=False`, an
    httpx `transport` is given, or the environment sends `https://` through a proxy
    (`HTTPS_PROXY`, `ALL_PROXY`, unless `NO_PROXY` names the host; the pool connects
    directly): then httpx, which honours proxies. `headers` go with every request;
    `connect_timeout` bounds connecting (TLS handshake included), `timeout` the whole
    exchange. `ssl_context` verifies an `https://` centre; by default the certificates httpx
    trusts (certifi's, or `SSL_CERT_FILE` / `SSL_CERT_DIR`), whichever transport serves."""
    connect_timeout = min(connect_timeout, timeout)
    if ssl_context is None and url.startswith("https://"):
        ssl_context = httpx.create_ssl_context()
    if fast_client and transport is None and not _proxied(url):
        pool = Http1Pool(
            url,
            headers=headers,
            max_connections=max_connections,
            timeout=timeout,
            connect_timeout=connect_timeout,
            ssl_context=ssl_context,
        )
        return PoolTransport(url, pool)
    client = httpx_client(
        url,
        headers=headers,
        timeout=timeout,
        connect_timeout=connect_timeout,
        max_connections=max_connections,
        transport=transport,
        ssl_context=ssl_context,
    )
    return HttpxTransport(url, client, timeout)


def httpx_client(
    url: str,
    *,
    headers: dict[str, str],
    timeout: float,
    connect_timeout: float,
    max_connections: int,
    transport: httpx.AsyncBaseTransport | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> httpx.AsyncClient:
    """An httpx client to `url` as the transports use it: HTTP/1.1 keep-alive, `timeout` per
    phase by default (a request may pass its own), `connect_timeout` to connect."""
    if ssl_context is None and url.startswith("https://"):
        ssl_context = httpx.create_ssl_context()
    return httpx.AsyncClient(
        base_url=url,
        headers=headers,
        timeout=httpx.Timeout(timeout, connect=min(connect_timeout, timeout)),
        limits=httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=30.0,
        ),
        http1=True,
        http2=False,
        verify=ssl_context or True,
        transport=transport,
    )
