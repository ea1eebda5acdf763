"""`edgekv kv ...` against a central server (`edgekv serve` in a child process) through --url /
EDGEKV_URL: the same commands, the same output, and one-line errors for what only a remote
target can get wrong (credentials, reachability)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import Outcome, Run
from tests.workers.processes import Server, central


@pytest.fixture(scope="module")
def centre(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    server, env = central(tmp_path_factory.mktemp("remote"))
    with server:
        yield server, env
    assert server.proc is not None and server.proc.returncode == 0, server.log()


@pytest.fixture
def remote(run: Run, centre: tuple[Server, dict[str, str]]) -> Run:
    """`run` with EDGEKV_URL, EDGEKV_API_TOKEN and EDGEKV_ACCOUNT_ID of the central server."""
    _, base = centre

    def invoke(
        *args: str, input: bytes | str | None = None, env: dict[str, str] | None = None
    ) -> Outcome:
        return run(*args, input=input, env={**base, **(env or {})})

    return invoke


def test_namespaces_on_the_centre(remote: Run, tmp_path: Path) -> None:
    created = remote("kv", "namespace", "create", "remote tasks")
    assert created.code == 0, created.stderr
    info = created.json()
    assert info in remote("kv", "namespace", "list").json()
    assert not (tmp_path / ".edgekv").exists()  # nothing local
    renamed = remote("kv", "namespace", "rename", "--namespace-id", info["id"], "--new-name", "r2")
    assert renamed.json() == {"id": info["id"], "title": "r2"}
    assert remote("kv", "namespace", "delete", "--namespace-id", info["id"]).code == 0
    assert info["id"] not in [n["id"] for n in remote("kv", "namespace", "list").json()]


def test_keys_and_bulk_on_the_centre(remote: Run, tmp_path: Path) -> None:
    ns = ["--namespace-id", remote("kv", "namespace", "create", "keys").json()["id"]]
    assert remote("kv", "key", "put", "a/b c:d", "v1", *ns, "--metadata", '{"m": 1}').code == 0
    assert remote("kv", "key", "get", "a/b c:d", *ns).stdout == b"v1"
    pairs = [{"key": f"k{i}", "value": str(i), "expiration_ttl": 600} for i in range(50)]
    (tmp_path / "pairs.json").write_text(json.dumps(pairs))
    assert remote("kv", "bulk", "put", "pairs.json", *ns).code == 0
    listed = remote("kv", "key", "list", *ns)
    assert len(listed.json()) == 51
    assert listed.json()[0] == {"name": "a/b c:d", "metadata": {"m": 1}}
    (tmp_path / "listed.json").write_bytes(listed.stdout)
    got = remote("kv", "bulk", "get", "listed.json", *ns).json()
    assert got["k7"] == "7" and got["a/b c:d"] == "v1"
    assert remote("kv", "bulk", "delete", "listed.json", *ns).code == 0
    assert remote("kv", "key", "list", *ns).json() == []
    short = remote("kv", "key", "put", "k", "v", *ns, "--ttl", "30")
    assert short.code == 1 and "Invalid expiration_ttl of 30" in short.stderr


def test_a_binding_is_resolved_but_never_created_remotely(remote: Run, tmp_path: Path) -> None:
    ns_id = remote("kv", "namespace", "create", "bound").json()["id"]
    (tmp_path / "wrangler.toml").write_text(
        f'kv_namespaces = [{{ binding = "B", id = "{ns_id}" }}, '
        f'{{ binding = "GONE", id = "{"e" * 32}" }}]\n'
    )
    assert remote("kv", "key", "put", "k", "v", "--binding", "B").code == 0
    assert remote("kv", "key", "get", "k", "--namespace-id", ns_id).stdout == b"v"
    gone = remote("kv", "key", "put", "k", "v", "--binding", "GONE")
    assert gone.code == 1 and f"namespace {'e' * 32} not found in http://" in gone.stderr


def test_remote_errors_are_one_line(
    remote: Run, run: Run, centre: tuple[Server, dict[str, str]]
) -> None:
    bad_token = remote("kv", "namespace", "list", env={"EDGEKV_API_TOKEN": "wrong"})
    assert bad_token.code == 1 and "403" in bad_token.stderr
    _, env = centre
    no_token = run("kv", "namespace", "list", "--url", env["EDGEKV_URL"])
    assert (
        no_token.stderr == "error: EDGEKV_API_TOKEN is not set (needed with --url / EDGEKV_URL; "
        "or give --credentials FILE)\n"
    )
    down = remote("kv", "namespace", "list", "--url", "http://127.0.0.1:1")
    assert down.code == 1 and "503" in down.stderr and "unreachable" in down.stderr
    assert remote("kv", "namespace", "list", "--url", "ftp://x").code == 1


def test_url_finds_the_credentials_serve_wrote(run: Run, tmp_path: Path) -> None:
    """The README's path: `edgekv serve` bootstraps .edgekv/credentials.json, and `kv ... --url`
    from the same directory uses it, saying so; `--credentials FILE` names another file."""
    from tests.servers import clean_env

    server = Server(["serve", "--quiet"], cwd=tmp_path, log_path=tmp_path / "serve.log")
    server.env = clean_env()
    with server:
        listed = run("kv", "namespace", "list", "--url", server.url)
        assert listed.code == 0, listed.stderr
        assert listed.json() == []
        assert listed.stderr == f"(credentials from {Path('.edgekv') / 'credentials.json'})\n"

        moved = tmp_path / "elsewhere.json"
        moved.write_bytes((tmp_path / ".edgekv" / "credentials.json").read_bytes())
        created = run(
            "kv", "namespace", "create", "x", "--url", server.url, "--credentials", str(moved)
        )
        assert created.code == 0, created.stderr
        assert f"(credentials from {moved})" in created.stderr

        # The environment wins over the file found in .edgekv; a given file wins over both.
        env = {"EDGEKV_API_TOKEN": "wrong", "EDGEKV_ACCOUNT_ID": "0" * 32}
        refused = run("kv", "namespace", "list", "--url", server.url, env=env)
        assert refused.code == 1 and "credentials from EDGEKV_API_TOKEN" in refused.stderr
        chosen = run(
            "kv", "namespace", "list", "--url", server.url, "--credentials", str(moved), env=env
        )
        assert chosen.code == 0 and chosen.json()[0]["title"] == "x"

        bad = tmp_path / "bad.json"
        bad.write_text('{"account_id": "a"}')
        for path, text in ((bad, "expected {"), (tmp_path / "none.json", "cannot read")):
            failed = run("kv", "namespace", "list", "--url", server.url, "--credentials", str(path))
            assert failed.code == 1 and text in failed.stderr
