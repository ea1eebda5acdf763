"""bootstrap.py: the first-start rules, on every engine."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from edgekv._types import Store
from edgekv.api.auth import hash_token
from edgekv.api.bootstrap import MARKER_HASH, bootstrap


async def test_env_account_and_token_are_created_once(store: Store) -> None:
    env = {"EDGEKV_ACCOUNT_ID": "a" * 32, "EDGEKV_API_TOKEN": "secret-token"}
    assert await bootstrap(store, None, env) is None
    assert await store.account_exists("a" * 32)
    token = await store.find_token(hash_token("secret-token"))
    assert token is not None and token.account_id == "a" * 32 and not token.read_only
    assert token.namespaces is None
    assert await bootstrap(store, None, env) is None  # idempotent
    assert await store.find_token(hash_token("secret-token")) == token


async def test_first_start_creates_admin_credentials(store: Store, tmp_path: Path) -> None:
    created = await bootstrap(store, tmp_path, {})
    assert created is not None and created.path == tmp_path / "credentials.json"
    assert created.account_id == await store.default_account()
    saved = json.loads(created.path.read_text())
    assert saved == {"account_id": created.account_id, "api_token": created.api_token}
    assert stat.S_IMODE(created.path.stat().st_mode) == 0o600
    token = await store.find_token(hash_token(created.api_token))
    assert token is not None and token.account_id == created.account_id
    assert not token.read_only and token.namespaces is None
    # a second start creates nothing
    assert await bootstrap(store, tmp_path, {}) is None
    assert json.loads(created.path.read_text()) == saved


async def test_without_a_directory_credentials_are_only_returned(store: Store) -> None:
    created = await bootstrap(store, None, {})
    assert created is not None and created.path is None
    assert await store.find_token(hash_token(created.api_token)) is not None


async def test_marker_is_no_usable_token(store: Store) -> None:
    await bootstrap(store, None, {})
    marker = await store.find_token(MARKER_HASH)
    assert marker is not None and marker.read_only and marker.namespaces == ()
    assert len(MARKER_HASH) != 64  # never the SHA-256 hex digest of any secret


async def test_half_set_environment_is_ignored(store: Store, tmp_path: Path) -> None:
    created = await bootstrap(store, tmp_path, {"EDGEKV_ACCOUNT_ID": "b" * 32})
    assert created is not None  # the normal first start
    assert not await store.account_exists("b" * 32)
