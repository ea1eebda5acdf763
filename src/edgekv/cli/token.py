"""`edgekv token create`: a new API token for an account, printed once."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import sys
from pathlib import Path

import click
import orjson

from edgekv._exceptions import KVError, StoreError
from edgekv.cli.serve import store_target

__all__ = ["token"]

_ID = re.compile(r"[0-9a-f]{32}")


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
