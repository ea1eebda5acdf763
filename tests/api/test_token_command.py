"""`edgekv token create` (cli/token.py) against a SQLite store, with and without a server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from tests.api.conftest import Central
from tests.servers import ROOT


def token_create(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgekv", "token", "create", "--data", str(data), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def test_create_prints_the_token_once(tmp_path: Path) -> None:
    account = "1" * 32
    result = token_create(tmp_path / "data", "--account-id", account)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert len(token) == 40 and "\n" not in token
    assert "created account" in result.stderr
    result = token_create(tmp_path / "data", "--account-id", account, "--json", "--read-only")
    payload = json.loads(result.stdout)
    assert payload["account_id"] == account and payload["read_only"] is True
    assert payload["namespaces"] is None and len(payload["api_token"]) == 40
    assert payload["api_token"] != token
    assert "created account" not in result.stderr


def test_bad_input(tmp_path: Path) -> None:
    result = token_create(tmp_path / "data", "--account-id", "not-hex")
    assert result.returncode == 2 and "32 lowercase hex" in result.stderr
    result = token_create(tmp_path / "data", "--account-id", "2" * 32, "--namespace-id", "f" * 32)
    assert result.returncode == 1 and "not found" in result.stderr
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgekv",
            "token",
            "create",
            "--account-id",
            "2" * 32,
            "--data",
            "x",
            "--database",
            "postgresql://h/db",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 2


def test_tokens_made_while_the_server_runs(central: Central) -> None:
    admin = {"Authorization": f"Bearer {central.token}"}
    ns = httpx.post(central.namespaces, json={"title": "t"}, headers=admin).json()["result"]["id"]
    other = httpx.post(central.namespaces, json={"title": "o"}, headers=admin).json()
    other_ns = other["result"]["id"]
    httpx.put(f"{central.namespaces}/{ns}/values/k", content=b"v", headers=admin)

    ro = token_create(central.data, "--account-id", central.account, "--read-only")
    headers = {"Authorization": f"Bearer {ro.stdout.strip()}"}
    assert httpx.get(f"{central.namespaces}/{ns}/values/k", headers=headers).content == b"v"
    r = httpx.put(f"{central.namespaces}/{ns}/values/k", content=b"x", headers=headers)
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == 10037

    limited = token_create(central.data, "--account-id", central.account, "--namespace-id", ns)
    headers = {"Authorization": f"Bearer {limited.stdout.strip()}"}
    assert httpx.get(f"{central.namespaces}/{ns}/values/k", headers=headers).status_code == 200
    r = httpx.get(f"{central.namespaces}/{other_ns}/keys", headers=headers)
    assert r.status_code == 403

    foreign = token_create(central.data, "--account-id", "3" * 32)
    headers = {"Authorization": f"Bearer {foreign.stdout.strip()}"}
    r = httpx.get(f"{central.namespaces}/{ns}/values/k", headers=headers)
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == 10000
