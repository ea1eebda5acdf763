"""`edgekv token list` and `edgekv token revoke` (cli/token.py) against real servers: a revoked
token is refused with 401 by the very next request, on a server over the same SQLite directory
and on every one of two servers sharing one PostgreSQL database (tests/pgcluster.py)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import httpx

from tests import pgcluster
from tests.api.conftest import start_central
from tests.servers import ROOT, CentralProcess, wait_ready


def token_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgekv", "token", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def create(store: list[str], account: str, *args: str) -> dict[str, str]:
    result = token_cli("create", *store, "--account-id", account, "--json", *args)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def verify(url: str, secret: str) -> int:
    headers = {"Authorization": f"Bearer {secret}"}
    return httpx.get(url + "/client/v4/user/tokens/verify", headers=headers, timeout=10).status_code


def test_list_and_revoke_against_a_running_sqlite_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with start_central(data) as server:
        store = ["--data", str(data)]
        ci = create(store, server.account, "--name", "ci", "--read-only")
        assert verify(server.url, ci["api_token"]) == 200  # cached by the server from now on

        listed = token_cli("list", *store, "--account-id", server.account, "--json")
        assert listed.returncode == 0, listed.stderr
        rows = {row["name"]: row for row in json.loads(listed.stdout)}
        assert set(rows) == {"EDGEKV_API_TOKEN", "ci"}
        assert rows["ci"] == {
            "id": ci["id"],
            "name": "ci",
            "read_only": True,
            "namespaces": None,
            "status": "active",
        }
        assert ci["api_token"] not in listed.stdout  # never the secret

        result = token_cli("revoke", ci["id"], *store)
        assert result.returncode == 0, result.stderr
        assert f"revoked token {ci['id']} (ci) of account {server.account}" in result.stdout
        assert verify(server.url, ci["api_token"]) == 401  # at once
        assert verify(server.url, server.token) == 200  # the others keep working

        table = token_cli("list", *store, "--account-id", server.account)
        line = next(line for line in table.stdout.splitlines() if line.startswith(ci["id"]))
        assert line.split() == [ci["id"], "ci", "read-only", "all", "revoked"]


def test_revoke_bad_input(tmp_path: Path) -> None:
    store = ["--data", str(tmp_path / "data")]
    result = token_cli("revoke", "f" * 32, *store)
    assert result.returncode == 1 and f"no token with id {'f' * 32}" in result.stderr
    result = token_cli("revoke", "not-an-id", *store)
    assert result.returncode == 2 and "32 lowercase hex" in result.stderr
    result = token_cli("list", *store, "--account-id", "nope")
    assert result.returncode == 2 and "32 lowercase hex" in result.stderr
    result = token_cli("list", *store, "--account-id", "a" * 32)
    assert result.returncode == 0 and "no tokens in account" in result.stderr


def test_revocation_reaches_every_server_on_one_postgresql(
    postgres_dsn: str, tmp_path: Path
) -> None:
    dsn = asyncio.run(pgcluster.fresh_database(postgres_dsn))
    first = CentralProcess(["--database", dsn], log_path=tmp_path / "a.log")
    second = CentralProcess(
        ["--database", dsn],
        account=first.account,
        token=first.token,
        log_path=tmp_path / "b.log",
    )
    servers = [first.launch(), second.launch()]
    try:
        wait_ready(servers, 30)
        store = ["--database", dsn]
        token = create(store, first.account, "--name", "shared")
        for server in servers:  # each server has it in its token cache now
            assert verify(server.url, token["api_token"]) == 200
            assert verify(server.url, token["api_token"]) == 200
        assert token_cli("revoke", token["id"], *store).returncode == 0
        assert [verify(server.url, token["api_token"]) for server in servers] == [401, 401]
        assert [verify(server.url, first.token) for server in servers] == [200, 200]
    finally:
        for server in servers:
            server.stop()
