"""The REST server's answers: the Cloudflare v4 envelope (`edgekv.wire`) as `Response`s, and
the errors handlers raise.

Every answer except "read value" is `{"success", "errors", "messages", "result", "result_info"?}`.
Handlers raise `ApiError`; the app turns it, a `KVError` from the binding or a `StoreError` into
an error envelope whose message reads like Cloudflare's: `"<operation>: '<text>'"`. A store
error answers with the status and code its class carries (`edgekv._exceptions`).
"""

from __future__ import annotations

import logging
from typing import Any

from edgekv import wire
from edgekv._exceptions import KVError, PreconditionFailed, StoreError, StoreUnavailable
from edgekv.api.http import Response

log = logging.getLogger("edgekv.api")

__all__ = [
    "ApiError",
    "error_response",
    "etag",
    "from_kv_error",
    "from_store_error",
    "ok",
    "precondition_failed",
]

_JSON = [(b"content-type", b"application/json")]
_ETAG = wire.ETAG_HEADER.encode()


class ApiError(Exception):
    """An error answer. `text` is prefixed with the route's operation unless `bare` (auth and
    routing errors read exactly as Cloudflare's, e.g. `Authentication error`)."""

    def __init__(
        self,
        status: int,
        code: int,
        text: str,
        *,
        bare: bool = False,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        super().__init__(text)
        self.status = status
        self.code = code
        self.text = text
        self.bare = bare
        self.headers = headers or []

    def message(self, operation: str) -> str:
        return self.text if self.bare or not operation else wire.wrap_message(operation, self.text)


def ok(
    result: Any = None, result_info: dict[str, Any] | None = None, status: int = 200
) -> Response:
    return Response(status, wire.ok_body(result, result_info), list(_JSON))


def error_response(
    status: int, code: int, message: str, headers: list[tuple[bytes, bytes]] | None = None
) -> Response:
    return Response(status, wire.error_body(code, message), [*_JSON, *(headers or [])])


def from_kv_error(exc: KVError) -> ApiError:
    """A binding error as a REST error: `_rules` and store failures attach `.code`."""
    if exc.status == 503:
        return _unavailable(exc.detail)
    code = exc.code
    if code is None:
        code = wire.INTERNAL if exc.status >= 500 else wire.BAD_REQUEST
    return ApiError(exc.status, code, exc.detail)


def from_store_error(exc: StoreError) -> ApiError:
    """A store failure as a REST error: the status, code and public text its class carries."""
    if exc.status == 503:
        return _unavailable(exc.detail)
    if isinstance(exc, PreconditionFailed):
        return precondition_failed(exc.version)
    return ApiError(exc.status, exc.code, exc.public_detail)


def etag(version: str) -> tuple[bytes, bytes]:
    """The `ETag` header of an entry's version (a strong entity tag)."""
    return (_ETAG, wire.entity_tag(version).encode())


def precondition_failed(version: str | None) -> ApiError:
    """412, code 10412, with the key's current ETag when it exists."""
    headers = None if version is None else [etag(version)]
    return ApiError(
        412, wire.PRECONDITION_FAILED, PreconditionFailed(version).detail, headers=headers
    )


def _unavailable(detail: str) -> ApiError:
    log.warning("store unavailable: %s", detail)  # the driver's text, for operators only
    unavailable = StoreUnavailable(detail)
    return ApiError(503, unavailable.code, unavailable.public_detail)
