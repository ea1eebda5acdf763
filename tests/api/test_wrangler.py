"""wrangler (the real CLI from npm) against `edgekv serve` in a subprocess."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import wrangler as wrangler_mod
from tests.api.conftest import Central
from tests.wrangler import Wrangler

pytestmark = pytest.mark.skipif(not wrangler_mod.available(), reason="node/npm not installed")


@pytest.fixture(scope="module")
def wrangler(shared_central: Central, tmp_path_factory: pytest.TempPathFactory) -> Wrangler:
    return Wrangler(
        shared_central.api,
        shared_central.token,
        shared_central.account,
        tmp_path_factory.mktemp("wrangler"),
    )


@pytest.fixture
def ns(wrangler: Wrangler, request: pytest.FixtureRequest) -> Iterator[str]:
    title = re.sub(r"\W+", "-", request.node.name)
    out = wrangler.run("kv", "namespace", "create", title).stdout
    match = re.search(r'"id":\s*"([0-9a-f]{32})"', out)
    assert match, out
    yield match.group(1)
    wrangler.run("kv", "namespace", "delete", "--namespace-id", match.group(1), check=False)


def test_namespace_create_list_rename_delete(wrangler: Wrangler) -> None:
    out = wrangler.run("kv", "namespace", "create", "demo").stdout
    ns = re.search(r'"id":\s*"([0-9a-f]{32})"', out).group(1)  # type: ignore[union-attr]
    listed = wrangler.json("kv", "namespace", "list")
    assert {"id": ns, "title": "demo", "supports_url_encoding": True} in listed
    wrangler.run("kv", "namespace", "rename", "--namespace-id", ns, "--new-name", "demo2")
    titles = {n["id"]: n["title"] for n in wrangler.json("kv", "namespace", "list")}
    assert titles[ns] == "demo2"
    wrangler.run("kv", "namespace", "delete", "--namespace-id", ns)
    assert ns not in [n["id"] for n in wrangler.json("kv", "namespace", "list")]


def test_key_put_get_list_delete(wrangler: Wrangler, ns: str) -> None:
    keys = ["dir/a b:c!", "with space", "colon:key", "pct%41", "ünï"]
    for key in keys:
        wrangler.run("kv", "key", "put", key, f"value of {key}", "--namespace-id", ns, "--remote")
    for key in keys:
        out = wrangler.run("kv", "key", "get", key, "--namespace-id", ns, "--remote", "--text")
        assert out.stdout.strip() == f"value of {key}"
    listed = wrangler.json("kv", "key", "list", "--namespace-id", ns, "--remote")
    assert [k["name"] for k in listed] == sorted(keys, key=str.encode)
    listed = wrangler.json("kv", "key", "list", "--namespace-id", ns, "--prefix", "dir", "--remote")
    assert listed == [{"name": "dir/a b:c!"}]
    wrangler.run("kv", "key", "delete", "dir/a b:c!", "--namespace-id", ns, "--remote")
    out = wrangler.run(
        "kv", "key", "get", "dir/a b:c!", "--namespace-id", ns, "--remote", "--text", check=False
    )
    assert "dir/a b:c!" not in [
        k["name"] for k in wrangler.json("kv", "key", "list", "--namespace-id", ns, "--remote")
    ]
    # wrangler turns the 404 of a missing key into an error naming the status
    assert out.returncode != 0 and "404" in out.stdout + out.stderr


def test_metadata_ttl_and_path(wrangler: Wrangler, ns: str, tmp_path: Path) -> None:
    wrangler.run(
        "kv",
        "key",
        "put",
        "withmeta",
        "hello",
        "--namespace-id",
        ns,
        "--metadata",
        '{"k":"v"}',
        "--ttl",
        "120",
        "--remote",
    )
    listed = wrangler.json("kv", "key", "list", "--namespace-id", ns, "--remote")
    entry = next(k for k in listed if k["name"] == "withmeta")
    assert entry["metadata"] == {"k": "v"}
    assert abs(entry["expiration"] - (time.time() + 120)) < 10
    data = b"binary\x00\xff\xfe data"
    path = tmp_path / "value.bin"
    path.write_bytes(data)
    wrangler.run(
        "kv", "key", "put", "fromfile", "--path", str(path), "--namespace-id", ns, "--remote"
    )
    assert wrangler.output("kv", "key", "get", "fromfile", "--namespace-id", ns, "--remote") == data


def test_bulk_put_and_delete_thousands(wrangler: Wrangler, ns: str, tmp_path: Path) -> None:
    pairs: list[dict[str, object]] = [
        {"key": f"bulk/{i:05d}", "value": f"v{i}"} for i in range(3500)
    ]
    pairs.append({"key": "b64", "value": "aGVsbG8=", "base64": True})
    pairs.append({"key": "meta", "value": "m", "metadata": {"x": 1}, "expiration_ttl": 600})
    (tmp_path / "bulk.json").write_text(json.dumps(pairs))
    wrangler.run("kv", "bulk", "put", str(tmp_path / "bulk.json"), "--namespace-id", ns, "--remote")
    listed = wrangler.json("kv", "key", "list", "--namespace-id", ns, "--remote")
    assert len(listed) == 3502
    out = wrangler.run("kv", "key", "get", "b64", "--namespace-id", ns, "--remote", "--text")
    assert out.stdout.strip() == "hello"
    (tmp_path / "keys.json").write_text(json.dumps([p["key"] for p in pairs[:3500]]))
    wrangler.run(
        "kv",
        "bulk",
        "delete",
        str(tmp_path / "keys.json"),
        "--namespace-id",
        ns,
        "--remote",
        "--force",
    )
    listed = wrangler.json("kv", "key", "list", "--namespace-id", ns, "--remote")
    assert sorted(k["name"] for k in listed) == ["b64", "meta"]


def test_account_from_memberships(shared_central: Central, tmp_path: Path) -> None:
    """Without CLOUDFLARE_ACCOUNT_ID wrangler asks GET /memberships for the account."""
    wrangler = Wrangler(shared_central.api, shared_central.token, None, tmp_path / "fresh")
    out = wrangler.run("kv", "namespace", "create", "via-memberships").stdout
    ns = re.search(r'"id":\s*"([0-9a-f]{32})"', out).group(1)  # type: ignore[union-attr]
    r = httpx.get(
        f"{shared_central.namespaces}/{ns}",
        headers={"Authorization": f"Bearer {shared_central.token}"},
    )
    assert r.status_code == 200 and r.json()["result"]["title"] == "via-memberships"
    shared_central.wait_log('"GET /client/v4/memberships')


def test_wrong_token_fails_clearly(shared_central: Central, tmp_path: Path) -> None:
    wrangler = Wrangler(shared_central.api, "wrong", shared_central.account, tmp_path / "bad")
    result = wrangler.run("kv", "namespace", "list", check=False)
    assert result.returncode != 0
    assert "Authentication error" in result.stdout + result.stderr
