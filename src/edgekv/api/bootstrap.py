"""First start of a central server: make sure someone can log in.

- `EDGEKV_ACCOUNT_ID` + `EDGEKV_API_TOKEN` in the environment (deployments, tests): that
  account and that token (read-write, every namespace) are created when missing.
- Otherwise, on the first start over a store (no bootstrap done yet), the default account gets
  an admin token, written to `DIR/credentials.json` (`{"account_id", "api_token"}`, mode 0600)
  when the store has a directory, and printed.

"Already bootstrapped" is remembered in the store itself, as a token record whose hash is not
a SHA-256 hex digest: no secret can hash to it, so it can never authenticate, and every engine
(SQLite, PostgreSQL, shared by many servers) keeps it without a schema change.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import orjson

from edgekv._types import Store, TokenRecord
from edgekv.api.auth import create_token, hash_token
from edgekv.store.memory import new_id

__all__ = ["CREDENTIALS_FILE", "Credentials", "bootstrap", "write_credentials"]

log = logging.getLogger("edgekv.server")

MARKER_HASH = "edgekv:bootstrapped"  # not hex: unreachable by any secret
CREDENTIALS_FILE = "credentials.json"


@dataclass(frozen=True, slots=True)
class Credentials:
    account_id: str
    api_token: str
    path: Path | None = None  # where they were written, if anywhere

    def to_json(self) -> bytes:
        return orjson.dumps({"account_id": self.account_id, "api_token": self.api_token})


def write_credentials(path: Path, credentials: Credentials) -> None:
    """Write atomically with mode 0600 from the start (never world-readable, even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, credentials.to_json() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


async def bootstrap(
    store: Store,
    data_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Credentials | None:
    """Run the first-start rules; returns newly created admin credentials (to print), or None
    when nothing was created that the operator does not already know."""
    env = os.environ if environ is None else environ
    account_id = env.get("EDGEKV_ACCOUNT_ID", "").strip()
    api_token = env.get("EDGEKV_API_TOKEN", "").strip()
    if account_id and api_token:
        await store.ensure_account(account_id)
        digest = hash_token(api_token)
        found = await store.find_token(digest)
        if found is None:
            await create_token(store, account_id, name="EDGEKV_API_TOKEN", secret=api_token)
            log.info("created the token of EDGEKV_API_TOKEN for account %s", account_id)
        elif found.revoked:
            log.warning("EDGEKV_API_TOKEN was revoked (edgekv token revoke); it stays refused")
        elif found.account_id != account_id:
            log.warning("EDGEKV_API_TOKEN already belongs to account %s", found.account_id)
        return None
    if account_id or api_token:
        log.warning("EDGEKV_ACCOUNT_ID and EDGEKV_API_TOKEN work together; ignoring the one set")
    if await store.find_token(MARKER_HASH) is not None:
        return None
    account = await store.default_account()
    secret, _ = await create_token(store, account, name="admin (first start)")
    path = None
    if data_dir is not None:
        path = data_dir / CREDENTIALS_FILE
        write_credentials(path, Credentials(account, secret))
    # Marked only once the credentials are safe: a crash before retries the whole bootstrap.
    await store.create_token(
        TokenRecord(
            id=new_id(),
            account_id=account,
            token_hash=MARKER_HASH,
            read_only=True,
            namespaces=(),
            name="bootstrap marker",
        )
    )
    return Credentials(account, secret, path)
