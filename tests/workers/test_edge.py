"""`edgekv edge`: a location serving a worker whose binding reads through the location cache in
front of a central server (`edgekv serve`), all real processes on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import edgekv.sync
from tests.workers.processes import Server, central, run_cli
from tests.workers.projects import ON_FETCH_WORKER, write_project


@pytest.fixture(scope="module")
def centre(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    server, env = central(tmp_path_factory.mktemp("centre"))
    with server:
        yield server, env


def edge_server(root: Path, env: dict[str, str], central_url: str) -> Server:
    return Server(
        ["edge", "--central", central_url, "--location", "ams", "--config", "wrangler.toml"],
        cwd=root,
        log_path=root / "edge.log",
        env=env,
    )


def remote_namespace(env: dict[str, str], title: str) -> str:
    with edgekv.sync.open(
        env["EDGEKV_URL"], token=env["EDGEKV_API_TOKEN"], account_id=env["EDGEKV_ACCOUNT_ID"]
    ) as kv:
        return kv.create_namespace(title).id


def test_a_worker_at_a_location_reads_and_writes_through_the_centre(
    centre: tuple[Server, dict[str, str]], tmp_path: Path
) -> None:
    server, env = centre
    ns_id = remote_namespace(env, "edge-test")
    write_project(tmp_path, ON_FETCH_WORKER, bindings={"KV": ns_id})
    with edge_server(tmp_path, env, server.url) as edge, edge.client() as http:
        assert http.put("/kv/greeting", content="hello from ams").status_code == 201
        assert http.get("/kv/greeting").text == "hello from ams"  # read-your-writes here
        at_centre = run_cli(
            ["kv", "key", "get", "greeting", "--namespace-id", ns_id], cwd=tmp_path, env=env
        )
        assert at_centre.stdout == b"hello from ams"
        assert http.get("/global/greeting").text == "hello from ams"
        assert http.delete("/kv/greeting").status_code == 204
        assert http.get("/kv/greeting").status_code == 404
        assert http.get("/healthz").text == "ok\n"
        stats = http.get("/__edgekv/stats").json()
        assert stats["location"] == "ams"
        assert stats["writes"] == 2 and stats["hits"] + stats["misses"] >= 3
    assert edge.stop() == 0
    assert "edgekv edge (ams): stopped" in edge.log()
    assert f"store {server.url} (credentials from EDGEKV_API_TOKEN / EDGEKV_ACCOUNT_ID)" in (
        edge.log()
    )


def test_a_binding_missing_on_the_centre_stops_the_location(
    centre: tuple[Server, dict[str, str]], tmp_path: Path
) -> None:
    server, env = centre
    write_project(tmp_path, ON_FETCH_WORKER, bindings={"KV": "d" * 32})
    args = ["edge", "--central", server.url, "--location", "ams", "--port", "1"]
    result = run_cli(args, cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert result.stderr.decode().splitlines()[-1] == (
        f"error: cannot start: binding KV: namespace {'d' * 32} does not exist on {server.url}"
    )


def test_credentials_are_required(tmp_path: Path) -> None:
    write_project(tmp_path, ON_FETCH_WORKER)
    env = {"EDGEKV_API_TOKEN": "", "EDGEKV_ACCOUNT_ID": ""}
    result = run_cli(
        ["edge", "--central", "http://127.0.0.1:1", "--location", "x"], cwd=tmp_path, env=env
    )
    assert result.returncode == 1
    assert result.stderr.decode() == (
        "error: EDGEKV_API_TOKEN is not set (needed with --central; or give --credentials FILE)\n"
    )
    missing = run_cli(["edge", "--location", "x"], cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.decode().startswith("error: Missing option '--central'.")


def test_a_location_starts_while_the_centre_is_down(tmp_path: Path) -> None:
    write_project(tmp_path, ON_FETCH_WORKER)
    env = {"EDGEKV_API_TOKEN": "t", "EDGEKV_ACCOUNT_ID": "a" * 32}
    with edge_server(tmp_path, env, "http://127.0.0.1:1") as edge, edge.client() as http:
        assert http.get("/healthz").status_code == 200
        ready = http.get("/readyz")  # alive, but not ready: the centre does not answer
        assert ready.status_code == 503 and ready.text.startswith("store unavailable:")
        assert http.get("/kv/anything").status_code == 500  # a cold read fails: KVError 503
    assert "cannot check binding KV" in edge.log()
