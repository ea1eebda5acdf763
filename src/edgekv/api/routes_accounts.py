"""Who the token is: memberships, accounts, token verification.

wrangler asks `GET /memberships` for the account when `CLOUDFLARE_ACCOUNT_ID` is not set; the
SDKs and `wrangler whoami` use `GET /accounts`, `GET /user/tokens/verify` and `GET /user`. A
token belongs to exactly one account, so each answers that one account. edgekv has tokens, not
users: `/user` describes the token, with an address under the reserved `.invalid` domain where
Cloudflare puts the user's email (wrangler prints it).
"""

from __future__ import annotations

from typing import Any

from edgekv._types import TokenRecord
from edgekv.api.context import Ctx
from edgekv.api.envelope import ok
from edgekv.api.http import Response

__all__ = ["get_account", "get_user", "list_accounts", "list_memberships", "verify_token"]

ACCOUNT_NAME = "edgekv"


def _token(ctx: Ctx) -> TokenRecord:
    assert ctx.token is not None  # these routes always authenticate
    return ctx.token


def _account(account_id: str) -> dict[str, Any]:
    return {"id": account_id, "name": ACCOUNT_NAME, "type": "standard"}


def _paged(items: list[Any]) -> Response:
    return ok(items, {"page": 1, "per_page": 20, "count": len(items), "total_count": len(items)})


async def list_memberships(ctx: Ctx) -> Response:
    token = _token(ctx)
    # Every page past the first is empty: clients page until they get an empty list.
    page = ctx.request.query.get("page", "1").strip()
    if page not in ("", "1"):
        return _paged([])
    membership = {
        "id": token.id,
        "status": "accepted",
        "account": _account(token.account_id),
        "permissions": {},
        "roles": ["Read Only" if token.read_only else "Administrator"],
    }
    return _paged([membership])


async def list_accounts(ctx: Ctx) -> Response:
    page = ctx.request.query.get("page", "1").strip()
    return _paged([] if page not in ("", "1") else [_account(_token(ctx).account_id)])


async def get_account(ctx: Ctx) -> Response:
    return ok(_account(ctx.account_id))


async def verify_token(ctx: Ctx) -> Response:
    token = _token(ctx)
    return ok({"id": token.id, "status": "active"}, None)


async def get_user(ctx: Ctx) -> Response:
    token = _token(ctx)
    return ok(
        {
            "id": token.id,
            "email": f"token-{token.id}@edgekv.invalid",
            "username": token.name or "edgekv token",
            "first_name": None,
            "last_name": None,
            "suspended": False,
            "two_factor_authentication_enabled": False,
        }
    )
