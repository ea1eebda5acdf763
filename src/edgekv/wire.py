"""The edgekv wire protocol: everything edgekv's HTTP client and its central server agree on.

One module for both sides, so that neither can drift from the other: the remote binding
(`edgekv.edge.remote`) builds requests and reads answers with it, the central server
(`edgekv.api`) routes requests and writes answers with it. The dialect is Cloudflare's REST API
v4 for Workers KV (docs/rest-api.md) plus a few edgekv extensions (docs/edge-protocol.md).

- **Paths**: `API_PREFIX`, the builders a client uses (`namespaces_path`, `namespace_path`,
  `value_path`, `key_segment`, the segment names `VALUES`, `KEYS`, `BULK`...) and the grammar
  the server routes on (`match_route` over the *raw* path, so a key holding `%2F` stays one segment;
  `unquote_key` decodes it exactly once).
- **Headers**: `BINDING_HEADER` (`edgekv-binding: 1`, a write a remote binding validated
  already), `METADATA_HEADER` (`edgekv-metadata`, a value's metadata JSON as base64url without
  padding), `EXPIRATION_HEADER`; versions: `ETAG_HEADER` / `IF_MATCH_HEADER` /
  `IF_NONE_MATCH_HEADER` (`entity_tag` / `parse_entity_tag`) and `SEQ_HEADER` (`edgekv-seq`,
  the change a write made).
- **Envelope**: `{"success", "errors", "messages", "result", "result_info"?}` — `ok_body`,
  `error_body`, and `first_error` to read one back; `wrap_message` / `unwrap_message` for
  Cloudflare's `<operation>: '<text>'` error text.
- **Error codes**: the Cloudflare codes clients know (docs/rest-api.md), as constants. The codes of
  store failures are not written here but taken from the exception classes that carry them
  (`edgekv._exceptions`); `STORE_ERRORS` maps such a code back to its class, for a client.
- **Codecs**: `b64url_encode` / `b64url_decode` (metadata header, list cursors) and
  `value_form` (a value write with metadata as `multipart/form-data`; the server parses it in
  `edgekv.api.multipart` under the same `FORM_VALUE` / `FORM_METADATA` field names).

A new route, header or code of this dialect belongs here. Other dialects (workerd's KV backend
protocol) have their own module; they may reuse the codecs.
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, unquote_to_bytes

import orjson

from edgekv._exceptions import (
    HistoryGone,
    NamespaceNotFound,
    NamespaceTitleTaken,
    PreconditionFailed,
    StoreError,
    StoreUnavailable,
    TooManyNamespaces,
)

__all__ = [
    "API_PREFIX",
    "AUTH",
    "BAD_CURSOR",
    "BAD_DIRECTION",
    "BAD_EXPIRATION",
    "BAD_LIMIT",
    "BAD_METADATA",
    "BAD_ORDER",
    "BAD_REQUEST",
    "BAD_TTL",
    "BINDING_HEADER",
    "BULK",
    "BULK_DELETE",
    "BULK_GET",
    "CHANGES",
    "ETAG_HEADER",
    "EXPIRATION_HEADER",
    "EXPORT",
    "FORBIDDEN",
    "FORM_METADATA",
    "FORM_VALUE",
    "HEALTH_PATH",
    "HISTORY_GONE",
    "IF_MATCH_HEADER",
    "IF_NONE_MATCH_HEADER",
    "ILLEGAL_KEY",
    "INTERNAL",
    "KEYS",
    "KEY_NOT_FOUND",
    "KEY_TOO_LONG",
    "METADATA",
    "METADATA_HEADER",
    "METHOD_NOT_ALLOWED",
    "METRICS_PATH",
    "MISSING_TITLE",
    "NAMESPACE_NOT_FOUND",
    "NO_ROUTE",
    "NS_METRICS",
    "OPENAPI_PATH",
    "PRECONDITION_FAILED",
    "READY_PATH",
    "SEQ_HEADER",
    "STATS",
    "STORE_ERRORS",
    "TITLE_TAKEN",
    "TOO_LARGE",
    "TOO_MANY_NAMESPACES",
    "TOO_MANY_REQUESTS",
    "UNAVAILABLE",
    "VALUES",
    "Match",
    "b64url_decode",
    "b64url_encode",
    "entity_tag",
    "error_body",
    "first_error",
    "key_segment",
    "match_route",
    "match_value",
    "namespace_path",
    "namespaces_path",
    "ok_body",
    "parse_entity_tag",
    "unquote_key",
    "unwrap_message",
    "value_form",
    "value_path",
    "wrap_message",
]

# -- paths ---------------------------------------------------------------------------------------
API_PREFIX = "/client/v4"
HEALTH_PATH = "/healthz"  # also answered outside the prefix (load balancers)
READY_PATH = "/readyz"  # liveness above; this one also touches the store (503 when it cannot)
OPENAPI_PATH = f"{API_PREFIX}/openapi.json"
VALUES = "values"  # …/{ns}/values/{key}: a value (GET, PUT, DELETE)
METADATA = "metadata"  # …/{ns}/metadata/{key}: a value's metadata (GET)
KEYS = "keys"  # …/{ns}/keys: a page of key names (GET)
BULK = "bulk"  # …/{ns}/bulk: write (PUT) or delete (DELETE) many
BULK_GET = "bulk/get"  # POST
BULK_DELETE = "bulk/delete"  # POST
CHANGES = "changes"  # …/{ns}/changes: the change feed, a long poll with `wait` (GET)
EXPORT = "export"  # …/{ns}/export: the namespace as one NDJSON snapshot, streamed (GET)
STATS = "stats"  # …/{ns}/stats: maintained key count and bytes (GET; the dashboard)
NS_METRICS = "metrics"  # …/{ns}/metrics: the namespace's last hour of requests (GET)
METRICS_PATH = "/metrics"  # Prometheus text, outside the prefix as scrapers expect


def namespaces_path(account_id: str) -> str:
    """`/client/v4/accounts/{account_id}/storage/kv/namespaces` (the id percent-encoded)."""
    return f"{API_PREFIX}/accounts/{quote(account_id, safe='')}/storage/kv/namespaces"


def namespace_path(account_id: str, namespace_id: str, tail: str = "") -> str:
    """A namespace's path, or below it: `tail` is e.g. `KEYS` or `BULK_GET`."""
    path = f"{namespaces_path(account_id)}/{quote(namespace_id, safe='')}"
    return f"{path}/{tail}" if tail else path


def value_path(account_id: str, namespace_id: str, key: str) -> str:
    """`…/namespaces/{namespace_id}/values/{key}`, the key one percent-encoded segment."""
    return f"{namespace_path(account_id, namespace_id)}/{VALUES}/{key_segment(key)}"


def key_segment(key: str) -> str:
    """A key as one percent-encoded path segment: "/" must not split it (the server routes on
    the raw path and takes everything after `values/` as the key)."""
    return quote(key, safe="")


@dataclass(slots=True)
class Match:
    """A routed request: the route `kind` (e.g. `"value"`), its path parameters, and the key
    still percent-encoded (`raw_key`, for the keyed routes)."""

    kind: str
    account_id: str = ""
    namespace_id: str = ""
    raw_key: bytes | None = None


_PREFIX = API_PREFIX.encode()
_FIXED = {
    b"/healthz": "healthz",
    b"/readyz": "readyz",
    b"/openapi.json": "openapi",
    b"/memberships": "memberships",
    b"/accounts": "accounts",
    b"/user/tokens/verify": "verify",
    b"/user": "user",
}
_NS_TAIL = {
    KEYS.encode(): "keys",
    BULK.encode(): "bulk",
    STATS.encode(): "stats",
    NS_METRICS.encode(): "ns_metrics",
    CHANGES.encode(): "changes",
    EXPORT.encode(): "export",
}
_KEYED = {VALUES.encode(): "value", METADATA.encode(): "metadata"}
_BULK = {b"delete": "bulk_delete", b"get": "bulk_get"}

# The hot routes (a key's value or metadata) in one regex; everything else by segments.
_KEYED_RE = re.compile(
    _PREFIX + rb"/accounts/([0-9a-zA-Z_-]+)/storage/kv/namespaces/([0-9a-zA-Z_-]+)"
    rb"/(" + rb"|".join(_KEYED) + rb")/(.*)",
    re.DOTALL,
)


_VALUES = VALUES.encode()


def match_value(raw_path: bytes) -> tuple[str, str, bytes] | None:
    """(account id, namespace id, raw key) of a value route's raw path (`…/values/{key}`), or
    None: `match_route`'s first test, narrowed to the value route (the REST server's fast path
    for the hot read, api/app.py). None may still be a value route that `match_route` finds by
    segments (e.g. a percent-encoded id)."""
    found = _KEYED_RE.fullmatch(raw_path)
    if found is None or found[3] != _VALUES:
        return None
    return found[1].decode(), found[2].decode(), found[4]


def match_route(raw_path: bytes) -> Match | None:
    """The route of a raw path, or None. The key is everything after `values/` / `metadata/`,
    still percent-encoded."""
    fast = _KEYED_RE.fullmatch(raw_path)
    if fast is not None:
        account, namespace, kind, key = fast.groups()
        return Match(_KEYED[kind], account.decode(), namespace.decode(), key)
    if raw_path == HEALTH_PATH.encode():
        return Match("healthz")
    if raw_path == READY_PATH.encode():
        return Match("readyz")
    if raw_path == METRICS_PATH.encode():
        return Match("metrics")
    if not raw_path.startswith(_PREFIX):
        return None
    rest = raw_path[len(_PREFIX) :]
    fixed = _FIXED.get(rest.rstrip(b"/") or rest)
    if fixed is not None:
        return Match(fixed)
    parts = rest.split(b"/", 8)
    # ["", "accounts", a, "storage", "kv", "namespaces", ns?, tail?, more?]
    if len(parts) < 3 or parts[0] != b"" or parts[1] != b"accounts" or not parts[2]:
        return None
    account = unquote(parts[2].decode("latin-1"))
    if len(parts) == 3 or (len(parts) == 4 and parts[3] == b""):
        return Match("account", account)
    if parts[3:6] != [b"storage", b"kv", b"namespaces"]:
        return None
    if len(parts) == 6 or (len(parts) == 7 and parts[6] == b""):
        return Match("namespaces", account)
    namespace = unquote(parts[6].decode("latin-1"))
    if not namespace:
        return None
    if len(parts) == 7 or (len(parts) == 8 and parts[7] == b""):
        return Match("namespace", account, namespace)
    tail = parts[7]
    if tail in _KEYED and len(parts) >= 9:
        return Match(_KEYED[tail], account, namespace, parts[8])
    if tail in _NS_TAIL and (len(parts) == 8 or (len(parts) == 9 and parts[8] == b"")):
        return Match(_NS_TAIL[tail], account, namespace)
    if tail == BULK.encode() and len(parts) == 9 and parts[8].rstrip(b"/") in _BULK:
        return Match(_BULK[parts[8].rstrip(b"/")], account, namespace)
    return None


def unquote_key(raw: bytes) -> str:
    """Percent-decode a key's raw path segment exactly once (`+` stays `+`: a path is not a
    form). Raises `UnicodeDecodeError` when its bytes are not UTF-8."""
    return (unquote_to_bytes(raw) if b"%" in raw else raw).decode()


# -- headers -------------------------------------------------------------------------------------
BINDING_HEADER = "edgekv-binding"
"""`edgekv-binding: 1` on a write: a remote binding validated it already, on the location's
clock, so the centre tolerates an absolute expiration that was `>= now + 60` there a moment ago
(docs/edge-protocol.md)."""
METADATA_HEADER = "edgekv-metadata"
"""On a value read: the metadata JSON, base64url without padding (one round trip per read)."""
EXPIRATION_HEADER = "expiration"
"""On a value read: the absolute expiration, UNIX seconds (Cloudflare's own header)."""
ETAG_HEADER = "etag"
"""On value and metadata reads and successful PUTs: the entry's version, `"<version>"`."""
IF_MATCH_HEADER = "if-match"
"""On PUT / DELETE of a value: write only if the key's version is this entity tag."""
IF_NONE_MATCH_HEADER = "if-none-match"
"""On PUT of a value, `*`: write only if the key does not exist."""
SEQ_HEADER = "edgekv-seq"
"""On a write that made a change: its sequence number in the namespace's feed."""

# A strong entity tag: visible ASCII but '"' between quotes (RFC 9110, without W/).
_ENTITY_TAG = re.compile(r'"([\x21\x23-\x7e]*)"')


def entity_tag(version: str) -> str:
    """A version as the strong entity tag of an `ETag` / `If-Match` header."""
    return f'"{version}"'


def parse_entity_tag(text: str) -> str | None:
    """The version in a strong entity tag (surrounding spaces allowed), or None when `text`
    is anything else (a weak tag, a list, `*`, no quotes)."""
    found = _ENTITY_TAG.fullmatch(text.strip())
    return None if found is None else found.group(1)


# -- error codes (docs/rest-api.md, plus a few of Cloudflare's own) ------------------------------
AUTH = 10000
BAD_REQUEST = 10001
INTERNAL = StoreError.code  # a bug of ours: logged with its traceback, never shown
KEY_NOT_FOUND = 10009
NAMESPACE_NOT_FOUND = NamespaceNotFound.code
TITLE_TAKEN = NamespaceTitleTaken.code
TOO_MANY_NAMESPACES = TooManyNamespaces.code
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
UNAVAILABLE = StoreUnavailable.code  # the store cannot be reached (503); clients retry
HISTORY_GONE = HistoryGone.code  # a change feed `since` older than the kept history (410)
PRECONDITION_FAILED = PreconditionFailed.code  # If-Match / If-None-Match did not hold (412)
METHOD_NOT_ALLOWED = 7001
NO_ROUTE = 7003

STORE_ERRORS: dict[int, type[StoreError]] = {
    cls.code: cls
    for cls in (
        NamespaceNotFound,
        NamespaceTitleTaken,
        TooManyNamespaces,
        HistoryGone,
        PreconditionFailed,
    )
}
"""The store failures a client rebuilds from an answer's code (`cls.from_answer`); others
become the client's own error with the answer's status. A 503 (`StoreUnavailable`) is told by
its status, whatever the body says."""

# -- envelope ------------------------------------------------------------------------------------
_WRAPPED = re.compile(r"^[\w .-]+: '(.*)'$", re.DOTALL)


def ok_body(result: Any = None, result_info: dict[str, Any] | None = None) -> bytes:
    payload: dict[str, Any] = {"success": True, "errors": [], "messages": [], "result": result}
    if result_info is not None:
        payload["result_info"] = result_info
    return orjson.dumps(payload)


def error_body(code: int, message: str) -> bytes:
    return orjson.dumps(
        {
            "success": False,
            "errors": [{"code": code, "message": message}],
            "messages": [],
            "result": None,
        }
    )


def wrap_message(operation: str, text: str) -> str:
    """An error message as Cloudflare writes it: `<operation>: '<text>'`."""
    return f"{operation}: '{text}'"


def unwrap_message(message: str) -> str:
    """The text of a `<operation>: '<text>'` message (a message without the wrapping as is)."""
    match = _WRAPPED.match(message)
    return match.group(1) if match else message


def first_error(content: bytes) -> tuple[int, str] | None:
    """The first error's code and unwrapped message of an error envelope, or None when the
    body is not one."""
    try:
        first = orjson.loads(content)["errors"][0]
        return int(first["code"]), unwrap_message(str(first["message"]))
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, ValueError):
        return None


# -- codecs --------------------------------------------------------------------------------------
def b64url_encode(text: str) -> str:
    """UTF-8, then base64url without padding."""
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def b64url_decode(text: str) -> str:
    """The inverse of `b64url_encode`; raises `ValueError` (`binascii.Error`,
    `UnicodeDecodeError`) on anything else."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()


FORM_VALUE = "value"
FORM_METADATA = "metadata"


def value_form(value: bytes, metadata: str) -> tuple[bytes, str]:
    """A value write with metadata as `multipart/form-data`: the body and its content type."""
    boundary = secrets.token_hex(16)
    mark = b"--" + boundary.encode()
    body = b"".join(
        (
            mark,
            b'\r\ncontent-disposition: form-data; name="%s"; filename="value"\r\n'
            % FORM_VALUE.encode(),
            b"content-type: application/octet-stream\r\n\r\n",
            value,
            b"\r\n",
            mark,
            b'\r\ncontent-disposition: form-data; name="%s"\r\n\r\n' % FORM_METADATA.encode(),
            metadata.encode(),
            b"\r\n",
            mark,
            b"--\r\n",
        )
    )
    return body, f"multipart/form-data; boundary={boundary}"
