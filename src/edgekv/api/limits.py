"""The REST server's body limits, over the shared body reader (`edgekv.asgi.body.Body`).

Nothing past a limit is ever kept: a body over its limit is refused (413, code 10024) as soon as
its declared `Content-Length` or the bytes received so far exceed the limit by more than
`DRAIN_ALLOWANCE`, so a 1 GB upload gets its 413 while it is still being sent and costs the
server at most one limit's worth of memory. The response to a body left unread carries
`Connection: close` (see `Request.has_unread_body`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from edgekv import wire
from edgekv._exceptions import KVError
from edgekv._rules import VALUE_MAX_BYTES, check_value_size
from edgekv.api.envelope import ApiError
from edgekv.api.http import Request
from edgekv.asgi.body import TooLarge

__all__ = [
    "BULK_BODY_LIMIT",
    "DRAIN_ALLOWANCE",
    "JSON_BODY_LIMIT",
    "MULTIPART_BODY_LIMIT",
    "MULTIPART_OVERHEAD",
    "VALUE_BODY_LIMIT",
    "iter_body",
    "raw_value_too_large",
    "read_body",
]

BULK_BODY_LIMIT = 100_000_000  # Cloudflare's 100 MB for a bulk request
MULTIPART_OVERHEAD = 1024 * 1024  # boundaries, part headers and the ≤1 KiB metadata part
JSON_BODY_LIMIT = 1024 * 1024  # namespace titles, bulk get (100 keys)
DRAIN_ALLOWANCE = 8 * 1024 * 1024  # how far past a limit a refused body is still read


def payload_too_large(limit: int) -> TooLarge:
    def make(size: int) -> Exception:
        return ApiError(
            413, wire.TOO_LARGE, f"Request body of {size} bytes exceeds the limit of {limit} bytes"
        )

    return make


def declared_length(request: Request) -> int | None:
    raw = request.headers.get(b"content-length")
    if raw is None:
        return None
    try:
        length = int(raw)
    except ValueError:
        raise ApiError(400, wire.BAD_REQUEST, "Invalid Content-Length header") from None
    if length < 0:
        raise ApiError(400, wire.BAD_REQUEST, "Invalid Content-Length header")
    return length


def iter_body(
    request: Request, limit: int, too_large: TooLarge | None = None
) -> AsyncIterator[bytes]:
    """The body's chunks as they arrive; raises `too_large(size)` (default: a 413 envelope)
    once over `limit`, after reading at most `DRAIN_ALLOWANCE` more bytes."""
    return request.body.stream(
        limit,
        too_large or payload_too_large(limit),
        declared=declared_length(request),
        drain=DRAIN_ALLOWANCE,
    )


async def read_body(request: Request, limit: int, too_large: TooLarge | None = None) -> bytes:
    return await request.body.read(
        limit,
        too_large or payload_too_large(limit),
        declared=declared_length(request),
        drain=DRAIN_ALLOWANCE,
    )


def raw_value_too_large(size: int) -> Exception:
    """The binding's own error for a value over 25 MiB (`size` is what arrived so far when
    no length was declared)."""
    try:
        check_value_size(size, "PUT")
    except KVError as exc:
        return exc
    raise AssertionError("only called with size > VALUE_MAX_BYTES")  # pragma: no cover


VALUE_BODY_LIMIT = VALUE_MAX_BYTES
MULTIPART_BODY_LIMIT = VALUE_MAX_BYTES + MULTIPART_OVERHEAD
