"""Bulk write, bulk delete and bulk get of a namespace.

Writes and deletes go through the binding's `put_many` / `delete_many` (≤ 10,000 items, every
item validated before anything is written, one transaction). Bulk get is the binding's
`get_entries` (its checks, one store read); it also answers what the binding cannot give
(docs/edge-protocol.md): each entry's `expiration`, and raw bytes with `"encoding": "base64"`.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

from edgekv import _rules as rules
from edgekv import wire
from edgekv.api.context import Ctx
from edgekv.api.envelope import ApiError, ok
from edgekv.api.http import Response
from edgekv.api.limits import BULK_BODY_LIMIT
from edgekv.api.routes_values import is_binding_write

__all__ = ["bulk_delete", "bulk_get", "bulk_write"]


def _bulk_result(count: int) -> Response:
    return ok({"successful_key_count": count, "unsuccessful_keys": []})


async def bulk_write(ctx: Ctx) -> Response:
    items = await ctx.json(BULK_BODY_LIMIT)
    if not isinstance(items, list):
        raise ApiError(
            400, wire.BAD_REQUEST, "request body must be a JSON array of {key, value} objects"
        )
    if not all(isinstance(item, dict) for item in items):
        raise ApiError(400, wire.BAD_REQUEST, "every item must be an object with key and value")
    if is_binding_write(ctx) and not any("expiration_ttl" in item for item in items):
        namespace = await ctx.services.binding_namespace(ctx.namespace_id)
    else:
        namespace = ctx.services.namespace(ctx.namespace_id)
    await namespace.put_many(items)
    return _bulk_result(len(items))


async def bulk_delete(ctx: Ctx) -> Response:
    keys = await ctx.json(BULK_BODY_LIMIT)
    if not isinstance(keys, list):
        raise ApiError(400, wire.BAD_REQUEST, "request body must be a JSON array of key names")
    await ctx.services.namespace(ctx.namespace_id).delete_many(keys)
    return _bulk_result(len(keys))


async def bulk_get(ctx: Ctx) -> Response:
    body = await ctx.json()
    if not isinstance(body, dict):
        raise ApiError(400, wire.BAD_REQUEST, 'request body must be {"keys": [...]}')
    keys = body.get("keys")
    if not isinstance(keys, list):
        raise ApiError(400, wire.BAD_REQUEST, "keys must be an array of key names")
    type_ = body.get("type", "text")
    with_metadata = body.get("withMetadata", False)
    encoding = body.get("encoding")
    if not isinstance(with_metadata, bool):
        raise ApiError(400, wire.BAD_REQUEST, "withMetadata must be true or false")
    if encoding not in (None, "base64"):
        raise ApiError(400, wire.BAD_REQUEST, 'encoding must be "base64" when given')
    rules.check_bulk_get(keys, type_, None)
    if encoding == "base64" and type_ != "text":
        raise ApiError(400, wire.BAD_REQUEST, 'encoding "base64" returns bytes: use type "text"')
    raw = encoding == "base64"
    found = await ctx.services.namespace(ctx.namespace_id).get_entries(keys, type_, decode=not raw)
    values: dict[str, Any] = {}
    for key, got in found.items():
        if got is None:
            values[key] = None
            continue
        entry, value = got
        if raw:
            value = base64.b64encode(entry.value).decode()
        if with_metadata:
            item: dict[str, Any] = {
                "value": value,
                "metadata": None if entry.metadata is None else orjson.Fragment(entry.metadata),
            }
            if entry.expiration is not None:
                item["expiration"] = entry.expiration
            if entry.version is not None:
                item["version"] = entry.version
            values[key] = item
        else:
            values[key] = value
    return ok({"values": values})
