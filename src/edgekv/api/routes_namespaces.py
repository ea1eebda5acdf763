"""Namespaces of an account: list (paged), create, get, rename, delete.

Titles are checked by the binding's rule (`_rules.check_title`); store errors become their
codes (10013 not found, 10014 title taken, 10018 too many) where the app catches them (the
classes carry their codes; `envelope.from_store_error`).
"""

from __future__ import annotations

import math
from typing import Any

from edgekv import wire
from edgekv._rules import check_title
from edgekv._types import NamespaceInfo
from edgekv.api.auth import may_use_namespace
from edgekv.api.context import Ctx, namespace_not_found
from edgekv.api.envelope import ApiError, ok
from edgekv.api.http import Response

__all__ = [
    "create_namespace",
    "delete_namespace",
    "get_namespace",
    "list_namespaces",
    "rename_namespace",
]

PER_PAGE_DEFAULT = 20
PER_PAGE_MAX = 1000


def namespace_json(info: NamespaceInfo) -> dict[str, Any]:
    return {"id": info.id, "title": info.title, "supports_url_encoding": True}


def _int_param(query: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    text = query.get(name)
    if text is None:
        return default
    try:
        value = int(text.strip())
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ApiError(400, wire.BAD_REQUEST, f"Invalid {name} of {text!r}: expected {low}..{high}")
    return value


async def list_namespaces(ctx: Ctx) -> Response:
    query = ctx.request.query
    page = _int_param(query, "page", 1, 1, 2**31)
    per_page = _int_param(query, "per_page", PER_PAGE_DEFAULT, 1, PER_PAGE_MAX)
    order = query.get("order")
    if order not in (None, "id", "title"):
        raise ApiError(400, wire.BAD_ORDER, f"Invalid order {order!r}: use 'id' or 'title'")
    direction = query.get("direction")
    if direction not in (None, "asc", "desc"):
        raise ApiError(
            400, wire.BAD_DIRECTION, f"Invalid direction {direction!r}: use 'asc' or 'desc'"
        )
    store = await ctx.services.store()
    items = await store.list_namespaces(ctx.account_id)
    token = ctx.token
    if token is not None and token.namespaces is not None:
        items = [n for n in items if may_use_namespace(token, n.id)]
    if order == "id":
        items.sort(key=lambda n: n.id)
    elif order == "title":
        items.sort(key=lambda n: n.title)
    if direction == "desc":
        items.reverse()
    start = (page - 1) * per_page
    chunk = items[start : start + per_page]  # past the end: [], which ends SDK pagination
    return ok(
        [namespace_json(n) for n in chunk],
        {
            "page": page,
            "per_page": per_page,
            "count": len(chunk),
            "total_count": len(items),
            "total_pages": math.ceil(len(items) / per_page),
        },
    )


async def _title(ctx: Ctx, op: str) -> str:
    body = await ctx.json()
    title = body.get("title") if isinstance(body, dict) else None
    if title is None:
        raise ApiError(400, wire.MISSING_TITLE, "request body must hold a title")
    check_title(title, op)
    assert isinstance(title, str)
    return title


async def create_namespace(ctx: Ctx) -> Response:
    token = ctx.token
    if token is not None and token.namespaces is not None:
        raise ApiError(
            403, wire.FORBIDDEN, "a token limited to some namespaces cannot create namespaces"
        )
    title = await _title(ctx, "CREATE_NAMESPACE")
    store = await ctx.services.store()
    info = await store.create_namespace(ctx.account_id, title)
    return ok(namespace_json(info))


async def get_namespace(ctx: Ctx) -> Response:
    store = await ctx.services.store()
    info = await store.get_namespace(ctx.account_id, ctx.namespace_id)
    if info is None:
        raise namespace_not_found()
    return ok(namespace_json(info))


async def rename_namespace(ctx: Ctx) -> Response:
    title = await _title(ctx, "RENAME_NAMESPACE")
    store = await ctx.services.store()
    info = await store.rename_namespace(ctx.account_id, ctx.namespace_id, title)
    return ok(namespace_json(info))


async def delete_namespace(ctx: Ctx) -> Response:
    store = await ctx.services.store()
    ctx.services.forget_namespace(ctx.namespace_id)
    await store.delete_namespace(ctx.account_id, ctx.namespace_id)
    return ok(None)
