"""Keys of a namespace: read / write / delete a value, read metadata, list keys.

Every operation goes through the binding (`KVNamespace`), so REST and Python callers share one
set of rules. The app has already checked the token and that the namespace belongs to the
account; the key arrives decoded exactly once from its raw path segment.

edgekv extensions (docs/edge-protocol.md): a value read also carries `edgekv-metadata` (the
metadata JSON, base64url without padding), and list accepts `limit` from 1 (Cloudflare: 10).

Versions (docs/versions.md): value and metadata reads and successful PUTs answer `ETag:
"<version>"`; PUT takes `If-Match: "<version>"` or `If-None-Match: *`, DELETE `If-Match`, and a
failed condition is a 412 (code 10412) carrying the current ETag. Writes that made a change also
answer `edgekv-seq`, its sequence number in the namespace's feed.
"""

from __future__ import annotations

from typing import Any

import orjson

from edgekv import _rules as rules
from edgekv import wire
from edgekv._exceptions import KVConflict
from edgekv._models import KeyListEntry
from edgekv._types import Absent, Entry, Written
from edgekv.api import envelope as env
from edgekv.api.context import Ctx
from edgekv.api.envelope import ApiError, ok
from edgekv.api.http import Response
from edgekv.api.limits import VALUE_BODY_LIMIT, raw_value_too_large, read_body
from edgekv.api.multipart import boundary_of, read_value_form

__all__ = [
    "delete_value",
    "get_metadata",
    "get_value",
    "key_not_found",
    "list_keys",
    "present",
    "put_value",
    "value_response",
]

OCTET_STREAM = (b"content-type", b"application/octet-stream")
_METADATA = wire.METADATA_HEADER.encode()
_EXPIRATION = wire.EXPIRATION_HEADER.encode()
_BINDING = wire.BINDING_HEADER.encode()
_SEQ = wire.SEQ_HEADER.encode()
_IF_MATCH = wire.IF_MATCH_HEADER.encode()
_IF_NONE_MATCH = wire.IF_NONE_MATCH_HEADER.encode()


def is_binding_write(ctx: Ctx) -> bool:
    """The write comes from a remote binding that validated it already (docs/edge-protocol.md)."""
    return ctx.request.headers.get(_BINDING) == b"1"


def key_not_found() -> ApiError:
    return ApiError(404, wire.KEY_NOT_FOUND, "key not found")


async def _entry(ctx: Ctx) -> Entry | None:
    # The binding's single-key read (key checks, then the store), keeping the whole entry:
    # the REST answer needs expiration and metadata, not only the decoded value.
    return present(await ctx.services.namespace(ctx.namespace_id).get_entry(ctx.key))


def present(entry: Entry | None) -> Entry | None:
    """A read's entry, None when missing (a location cache's miss, `Absent`, is missing too)."""
    return None if entry.__class__ is Absent else entry


async def get_value(ctx: Ctx) -> Response:
    entry = await _entry(ctx)
    if entry is None:
        raise key_not_found()
    return value_response(entry)


def value_response(entry: Entry) -> Response:
    """The answer of a value read that found `entry` (also built by the app's fast path)."""
    headers = [OCTET_STREAM]
    if entry.expiration is not None:
        headers.append((_EXPIRATION, str(entry.expiration).encode()))
    if entry.metadata is not None:
        headers.append((_METADATA, wire.b64url_encode(entry.metadata).encode()))
    if entry.version is not None:
        headers.append(env.etag(entry.version))
    return Response(200, entry.value, headers)


async def get_metadata(ctx: Ctx) -> Response:
    entry = await _entry(ctx)
    if entry is None:
        raise key_not_found()
    # Stored metadata is validated JSON text: embed it as it is.
    response = ok(None if entry.metadata is None else orjson.Fragment(entry.metadata))
    if entry.version is not None:
        response.headers.append(env.etag(entry.version))
    return response


def _if_match(ctx: Ctx) -> str | None:
    raw = ctx.request.headers.get(_IF_MATCH)
    if raw is None:
        return None
    version = wire.parse_entity_tag(raw.decode("latin-1"))
    if version is None:
        raise ApiError(
            400,
            wire.BAD_REQUEST,
            'If-Match must be one strong entity tag: "<version>" as an ETag gave it',
        )
    return version


def _if_none_match(ctx: Ctx) -> str | None:
    raw = ctx.request.headers.get(_IF_NONE_MATCH)
    if raw is None:
        return None
    if raw.strip() != b"*":
        raise ApiError(400, wire.BAD_REQUEST, "If-None-Match must be *")
    return "*"


def _conditions(ctx: Ctx, *, none_match: bool) -> tuple[str | None, str | None]:
    if_match = _if_match(ctx)
    if_none_match = _if_none_match(ctx) if none_match else None
    if not none_match and _IF_NONE_MATCH in ctx.request.headers:
        raise ApiError(400, wire.BAD_REQUEST, "If-None-Match is not allowed on DELETE")
    if if_match is not None and if_none_match is not None:
        raise ApiError(400, wire.BAD_REQUEST, "If-Match and If-None-Match exclude each other")
    return if_match, if_none_match


def _written(written: Written | None) -> Response:
    response = ok(None)
    if written is not None:
        response.headers.append((_SEQ, str(written.seq).encode()))
    return response


def _metadata(raw: bytes | None) -> Any:
    if raw is None:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, wire.BAD_METADATA, "metadata must be valid JSON") from None


async def put_value(ctx: Ctx) -> Response:
    # The key first: a bad key is refused before a possibly large body is read.
    rules.encode_key(ctx.key, "PUT")
    if_match, if_none_match = _conditions(ctx, none_match=True)
    content_type = ctx.request.headers.get(b"content-type", b"")
    boundary = boundary_of(content_type) if b"multipart" in content_type.lower() else None
    metadata: Any = None
    if boundary is not None:
        form = await read_value_form(ctx.request, boundary)
        value, metadata = form.value, _metadata(form.metadata)
    else:
        value = await read_body(ctx.request, VALUE_BODY_LIMIT, raw_value_too_large)
    query = ctx.request.query
    binding = is_binding_write(ctx) and "expiration_ttl" not in query
    namespace = (
        await ctx.services.binding_namespace(ctx.namespace_id)
        if binding
        else ctx.services.namespace(ctx.namespace_id)
    )
    try:
        written = await namespace._put(
            ctx.key,
            value,
            expiration=query.get("expiration"),  # coerced by the rules
            expiration_ttl=query.get("expiration_ttl"),
            metadata=metadata,
            if_match=if_match,
            if_none_match=if_none_match,
        )
    except KVConflict as exc:
        raise env.precondition_failed(exc.version) from None
    response = _written(written)
    response.headers.append(env.etag(written.version))
    return response


async def delete_value(ctx: Ctx) -> Response:
    if_match, _ = _conditions(ctx, none_match=False)
    try:
        written = await ctx.services.namespace(ctx.namespace_id)._delete(ctx.key, if_match=if_match)
    except KVConflict as exc:
        raise env.precondition_failed(exc.version) from None
    return _written(written)


def list_limit(text: str | None) -> int | None:
    """`limit` of a key list: an integer 1..1000 (edgekv also accepts below Cloudflare's 10);
    anything else is 400, code 10028."""
    if text is None:
        return None
    try:
        value = int(text.strip())
    except ValueError:
        value = 0
    if value < 1:
        raise ApiError(
            400,
            wire.BAD_LIMIT,
            f"Invalid key_count_limit of {text!r}. Please specify an integer from 1 to "
            f"{rules.LIST_LIMIT_MAX}.",
        )
    return rules.check_list_limit(value)  # over 1000: the binding's own error


async def list_keys(ctx: Ctx) -> Response:
    query = ctx.request.query
    limit = list_limit(query.get("limit"))
    page = await ctx.services.namespace(ctx.namespace_id).list(
        prefix=query.get("prefix"), limit=limit, cursor=query.get("cursor")
    )
    return ok(
        [_listed(k) for k in page.keys], {"count": len(page.keys), "cursor": page.cursor or ""}
    )


def _listed(key: KeyListEntry) -> dict[str, Any]:
    # Stored metadata is validated JSON text: embedded as it is, never parsed and re-encoded.
    out: dict[str, Any] = {"name": key.name}
    if key.expiration is not None:
        out["expiration"] = key.expiration
    if key.metadata_json is not None:
        out["metadata"] = orjson.Fragment(key.metadata_json)
    return out
