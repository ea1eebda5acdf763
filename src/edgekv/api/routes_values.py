"""Keys of a namespace: read / write / delete a value, read metadata, list keys.

Every operation goes through the binding (`KVNamespace`), so REST and Python callers share one
set of rules. The app has already checked the token and that the namespace belongs to the
account; the key arrives decoded exactly once from its raw path segment.

edgekv extensions (docs/edge-protocol.md): a value read also carries `edgekv-metadata` (the
metadata JSON, base64url without padding), and list accepts `limit` from 1 (Cloudflare: 10).
"""

from __future__ import annotations

from typing import Any

import orjson

from edgekv import _rules as rules
from edgekv import wire
from edgekv._models import KeyListEntry
from edgekv._types import Entry
from edgekv.api.context import Ctx
from edgekv.api.envelope import ApiError, ok
from edgekv.api.http import Response
from edgekv.api.limits import VALUE_BODY_LIMIT, raw_value_too_large, read_body
from edgekv.api.multipart import boundary_of, read_value_form

__all__ = ["delete_value", "get_metadata", "get_value", "list_keys", "put_value"]

OCTET_STREAM = (b"content-type", b"application/octet-stream")
_METADATA = wire.METADATA_HEADER.encode()
_EXPIRATION = wire.EXPIRATION_HEADER.encode()
_BINDING = wire.BINDING_HEADER.encode()


def is_binding_write(ctx: Ctx) -> bool:
    """The write comes from a remote binding that validated it already (docs/edge-protocol.md)."""
    return ctx.request.headers.get(_BINDING) == b"1"


def key_not_found() -> ApiError:
    return ApiError(404, wire.KEY_NOT_FOUND, "key not found")


async def _entry(ctx: Ctx) -> Entry | None:
    # The binding's single-key read (key checks, then the store), keeping the whole entry:
    # the REST answer needs expiration and metadata, not only the decoded value.
    return await ctx.services.namespace(ctx.namespace_id)._get_entry(ctx.key, None)


async def get_value(ctx: Ctx) -> Response:
    entry = await _entry(ctx)
    if entry is None:
        raise key_not_found()
    headers = [OCTET_STREAM]
    if entry.expiration is not None:
        headers.append((_EXPIRATION, str(entry.expiration).encode()))
    if entry.metadata is not None:
        headers.append((_METADATA, wire.b64url_encode(entry.metadata).encode()))
    return Response(200, entry.value, headers)


async def get_metadata(ctx: Ctx) -> Response:
    entry = await _entry(ctx)
    if entry is None:
        raise key_not_found()
    # Stored metadata is validated JSON text: embed it as it is.
    return ok(None if entry.metadata is None else orjson.Fragment(entry.metadata))


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
    await namespace.put(
        ctx.key,
        value,
        expiration=query.get("expiration"),  # type: ignore[arg-type]  # coerced by the rules
        expiration_ttl=query.get("expiration_ttl"),  # type: ignore[arg-type]
        metadata=metadata,
    )
    return ok(None)


async def delete_value(ctx: Ctx) -> Response:
    await ctx.services.namespace(ctx.namespace_id).delete(ctx.key)
    return ok(None)


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
