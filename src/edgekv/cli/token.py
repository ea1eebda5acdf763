"""`edgekv token create | list | revoke`: API tokens of the central server's store.

`create` prints a new token once (the store keeps its hash); `list` shows an account's tokens
(never their secrets); `revoke` refuses a token from then on, on every server sharing the store.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson

from edgekv._exceptions import KVError, StoreError
from edgekv._types import Store, TokenRecord
from edgekv.cli.serve import store_target

__all__ = ["token"]

_STORE_OPTIONS = (
    click.option(
        "--data",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Directory of the embedded SQLite store (default .edgekv).",
    ),
    click.option("--database", metavar="URL", default=None, help="A postgresql:// URL instead."),
)


def _store_options(command: Any) -> Any:
    for option in reversed(_STORE_OPTIONS):
        command = option(command)
    return command


def _run(target: str | Path, work: Callable[[Store], Awaitable[_T]]) -> _T:
    """Open the store, run `work`, close it; store trouble is one line and exit 1."""

    async def main() -> _T:
        from edgekv._client import Client

        client = Client(target, sweep_interval=None)
        try:
            return await work(await client.connect())
        finally:
            await client.aclose()

    try:
        return asyncio.run(main())
    except (StoreError, KVError, OSError, sqlite3.Error) as exc:
        detail = exc.detail if isinstance(exc, StoreError) else str(exc)
        raise click.ClickException(f"cannot use the store: {detail}") from None


_ID = re.compile(r"[0-9a-f]{32}")
_T = TypeVar("_T")


@click.group()
def token() -> None:
    """Manage API tokens of the central server's store."""


async def _create(
    target: str | Path,
    account_id: str,
    read_only: bool,
    namespace_ids: tuple[str, ...],
    name: str,
) -> tuple[str, str, bool]:
    from edgekv._client import Client
    from edgekv.api.auth import create_token

    client = Client(target, sweep_interval=None)
    try:
        store = await client.connect()
        created = not await store.account_exists(account_id)
        if created:
            await store.ensure_account(account_id)
        for namespace_id in namespace_ids:
            if await store.get_namespace(account_id, namespace_id) is None:
                raise click.ClickException(
                    f"namespace {namespace_id} not found in account {account_id}"
                )
        secret, record = await create_token(
            store,
            account_id,
            read_only=read_only,
            namespaces=namespace_ids or None,
            name=name,
        )
        return secret, record.id, created
    finally:
        await client.aclose()


@token.command("create")
@click.option("--account-id", required=True, help="The account (created if it does not exist).")
@click.option("--read-only", is_flag=True, help="May read but never change data.")
@click.option(
    "--namespace-id",
    "namespace_ids",
    multiple=True,
    help="Limit the token to this namespace (repeatable); default: every namespace.",
)
@click.option("--name", default="", help="A label for the token.")
@click.option(
    "--data",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory of the embedded SQLite store (default .edgekv).",
)
@click.option("--database", metavar="URL", default=None, help="A postgresql:// URL instead.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON with the token and its id.")
def create(
    account_id: str,
    read_only: bool,
    namespace_ids: tuple[str, ...],
    name: str,
    data: Path | None,
    database: str | None,
    as_json: bool,
) -> None:
    """Create an API token and print it (it is shown only this once: the store keeps its hash)."""
    if not _ID.fullmatch(account_id):
        raise click.BadParameter("must be 32 lowercase hex characters", param_hint="--account-id")
    target, _ = store_target(data, database)
    try:
        secret, token_id, created = asyncio.run(
            _create(target, account_id, read_only, tuple(dict.fromkeys(namespace_ids)), name)
        )
    except (StoreError, KVError, OSError, sqlite3.Error) as exc:
        detail = exc.detail if isinstance(exc, StoreError) else str(exc)
        raise click.ClickException(f"cannot use the store: {detail}") from None
    if created:
        click.echo(f"created account {account_id}", err=True)
    if as_json:
        payload = {
            "id": token_id,
            "account_id": account_id,
            "api_token": secret,
            "read_only": read_only,
            "namespaces": list(dict.fromkeys(namespace_ids)) or None,
        }
        sys.stdout.write(orjson.dumps(payload).decode() + "\n")
    else:
        click.echo(secret)


def _token_json(record: TokenRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "read_only": record.read_only,
        "namespaces": None if record.namespaces is None else list(record.namespaces),
        "status": "revoked" if record.revoked else "active",
    }


@token.command("list")
@click.option("--account-id", required=True, help="The account whose tokens to list.")
@_store_options
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def list_(account_id: str, data: Path | None, database: str | None, as_json: bool) -> None:
    """List the API tokens of an account: id, name, access, namespaces, status (never the
    secret: the store keeps only its hash)."""
    from edgekv.api.bootstrap import MARKER_HASH

    if not _ID.fullmatch(account_id):
        raise click.BadParameter("must be 32 lowercase hex characters", param_hint="--account-id")
    target, _ = store_target(data, database)

    async def work(store: Store) -> list[TokenRecord]:
        return await store.list_tokens(account_id)

    # The bootstrap marker is a record of the store, not a token anyone holds.
    records = [t for t in _run(target, work) if t.token_hash != MARKER_HASH]
    if as_json:
        sys.stdout.write(orjson.dumps([_token_json(t) for t in records]).decode() + "\n")
        return
    if not records:
        click.echo(f"no tokens in account {account_id}", err=True)
        return
    rows = [("ID", "NAME", "ACCESS", "NAMESPACES", "STATUS")]
    for t in records:
        scope = "all" if t.namespaces is None else ",".join(t.namespaces) or "none"
        access = "read-only" if t.read_only else "read-write"
        rows.append((t.id, t.name or "-", access, scope, _token_json(t)["status"]))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo("  ".join([*cells, row[4]]))


@token.command("revoke")
@click.argument("token_id")
@_store_options
def revoke(token_id: str, data: Path | None, database: str | None) -> None:
    """Revoke an API token by its id (see `edgekv token list`): every server sharing the store
    answers it with 401 from then on."""
    if not _ID.fullmatch(token_id):
        raise click.BadParameter("must be 32 lowercase hex characters", param_hint="TOKEN_ID")
    target, _ = store_target(data, database)

    async def work(store: Store) -> TokenRecord | None:
        return await store.revoke_token(token_id)

    record = _run(target, work)
    if record is None:
        raise click.ClickException(f"no token with id {token_id}")
    name = f" ({record.name})" if record.name else ""
    click.echo(f"revoked token {record.id}{name} of account {record.account_id}")
