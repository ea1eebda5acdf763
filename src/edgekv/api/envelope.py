"""The Cloudflare v4 response envelope and the error codes clients know (rest-api.md).

Every answer except "read value" is `{"success", "errors", "messages", "result", "result_info"?}`.
Handlers raise `ApiError`; the app turns it, a `KVError` from the binding or a `StoreError` into
an error envelope whose message reads like Cloudflare's: `"<operation>: '<text>'"`.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from edgekv._exceptions import (
    HistoryGone,
    KVError,
    NamespaceNotFound,
    NamespaceTitleTaken,
    PreconditionFailed,
    StoreError,
    StoreUnavailable,
    TooManyNamespaces,
)
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

# -- error codes (rest-api.md "Error codes clients know", plus a few of Cloudflare's own) ------
AUTH = 10000
BAD_REQUEST = 10001
INTERNAL = 10002  # a bug of ours: logged with its traceback, never shown
KEY_NOT_FOUND = 10009
NAMESPACE_NOT_FOUND = 10013
TITLE_TAKEN = 10014
TOO_MANY_NAMESPACES = 10018
MISSING_TITLE = 10019
TOO_MANY_REQUESTS = 10022
TOO_LARGE = 10024
BAD_LIMIT = 10028
KEY_TOO_LONG = 10030
BAD_EXPIRATION = 10033
BAD_TTL = 10034
FORBIDDEN = 10037
BAD_CURSOR = 10041
ILLEGAL_KEY = 10042
BAD_ORDER = 10043
BAD_DIRECTION = 10044
BAD_METADATA = 10047
UNAVAILABLE = 10050  # the store cannot be reached (503); clients retry
HISTORY_GONE = 10410  # a change feed `since` older than the kept history (410)
PRECONDITION_FAILED = 10412  # a conditional write's If-Match / If-None-Match failed (412)
METHOD_NOT_ALLOWED = 7001
NO_ROUTE = 7003

_JSON = [(b"content-type", b"application/json")]


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
        return self.text if self.bare or not operation else f"{operation}: '{self.text}'"


def _dumps(payload: Any) -> bytes:
    return orjson.dumps(payload)


def ok(
    result: Any = None, result_info: dict[str, Any] | None = None, status: int = 200
) -> Response:
    payload: dict[str, Any] = {"success": True, "errors": [], "messages": [], "result": result}
    if result_info is not None:
        payload["result_info"] = result_info
    return Response(status, _dumps(payload), list(_JSON))


def error_response(
    status: int, code: int, message: str, headers: list[tuple[bytes, bytes]] | None = None
) -> Response:
    payload = {
        "success": False,
        "errors": [{"code": code, "message": message}],
        "messages": [],
        "result": None,
    }
    return Response(status, _dumps(payload), [*_JSON, *(headers or [])])


def from_kv_error(exc: KVError) -> ApiError:
    """A binding error as a REST error: `_rules` and store failures attach `.code`."""
    code = exc.code
    if code is None:
        code = INTERNAL if exc.status >= 500 else BAD_REQUEST
    if exc.status == 503:
        return _unavailable(exc.detail)
    return ApiError(exc.status, code, exc.detail)


def _unavailable(detail: str) -> ApiError:
    # The driver's text may name the database host: it goes to the log, not to clients.
    log.warning("store unavailable: %s", detail)
    return ApiError(503, UNAVAILABLE, "the store is unavailable, try again shortly")


def from_store_error(exc: StoreError) -> ApiError:
    if isinstance(exc, NamespaceNotFound):
        return ApiError(404, NAMESPACE_NOT_FOUND, "namespace not found")
    if isinstance(exc, NamespaceTitleTaken):
        return ApiError(400, TITLE_TAKEN, exc.detail)
    if isinstance(exc, TooManyNamespaces):
        return ApiError(400, TOO_MANY_NAMESPACES, exc.detail)
    if isinstance(exc, StoreUnavailable):
        return _unavailable(exc.detail)
    if isinstance(exc, HistoryGone):
        return ApiError(410, HISTORY_GONE, exc.detail)
    if isinstance(exc, PreconditionFailed):
        return precondition_failed(exc.version)
    return ApiError(exc.status, INTERNAL if exc.status >= 500 else BAD_REQUEST, exc.detail)


def etag(version: str) -> tuple[bytes, bytes]:
    """The `ETag` header of an entry's version (a strong entity tag)."""
    return (b"etag", f'"{version}"'.encode())


def precondition_failed(version: str | None) -> ApiError:
    """412, code 10412, with the key's current ETag when it exists."""
    headers = None if version is None else [etag(version)]
    return ApiError(412, PRECONDITION_FAILED, "precondition failed", headers=headers)
