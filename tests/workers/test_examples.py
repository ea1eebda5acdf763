"""The examples run as their READMEs say: `edgekv dev --config examples/<name>/wrangler.toml`."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

import edgekv.sync
from tests.servers import wait_for
from tests.workers.processes import Server, central, run_cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def example_server(name: str, tmp_path: Path) -> Server:
    config = str(EXAMPLES / name / "wrangler.toml")
    return Server(
        ["dev", "--config", config, "--persist-to", str(tmp_path / "state")],
        cwd=tmp_path,
        log_path=tmp_path / f"{name}.log",
    )


def test_todo(tmp_path: Path) -> None:
    with example_server("todo", tmp_path) as srv, srv.client() as http:
        missing = http.get("/to-do/123")
        assert (missing.status_code, missing.text) == (404, "Value not found")
        assert http.put("/to-do/123", content="buy milk").status_code == 201
        assert http.get("/to-do/123").text == "buy milk"
        assert http.delete("/to-do/123").status_code == 204
        assert http.get("/to-do/123").status_code == 404
        assert http.post("/to-do/1").status_code == 405
        assert http.get("/elsewhere").status_code == 404


def test_redirects(tmp_path: Path) -> None:
    config = ["--config", str(EXAMPLES / "redirects" / "wrangler.toml")]
    store = ["--persist-to", str(tmp_path / "state")]
    with example_server("redirects", tmp_path) as srv, srv.client() as http:
        # The first request seeds the demo links after answering (ctx.wait_until).
        assert http.get("/").json()["config"]["maintenance"] is False
        wait_for(lambda: http.get("/kv").status_code == 301)
        assert http.get("/kv").headers["location"] == "https://developers.cloudflare.com/kv/"
        fallback = http.get("/unknown")
        assert (fallback.status_code, fallback.headers["location"]) == (302, "https://github.com/")
        assert http.post("/kv").status_code == 405

        links = str(EXAMPLES / "redirects" / "links.json")
        put = run_cli(
            ["kv", "bulk", "put", links, "--binding", "LINKS", *config, *store], cwd=tmp_path
        )
        assert put.returncode == 0, put.stderr
        assert http.get("/edgekv").headers["location"] == "https://github.com/"

        on = ["kv", "key", "put", "config", '{"maintenance": true}', "--binding", "LINKS"]
        assert run_cli([*on, *config, *store], cwd=tmp_path).returncode == 0
        assert http.get("/kv").status_code == 503


# -- feature-flags: a JavaScript worker in workerd ----------------------------------------------

FLAGS_CONFIG = EXAMPLES / "feature-flags" / "wrangler.jsonc"
FLAGS_ID = "c0ffee00c0ffee00c0ffee00c0ffee00"


def _workerd() -> str:
    from tests import workerd

    if not workerd.available():
        pytest.skip("node/npm not installed")
    return str(workerd.ensure_installed())


def _use_flags(http: httpx.Client, admin: str) -> None:
    auth = {"authorization": f"Bearer {admin}"}
    assert http.put("/flags/beta", json={"enabled": True}).status_code == 401
    put = http.put("/flags/beta", json={"enabled": True, "rollout": 50}, headers=auth)
    assert put.status_code == 201, put.text
    flag = http.get("/flags/beta").json()
    assert (flag["enabled"], flag["rollout"]) == (True, 50) and flag["updated"]
    users = [http.get("/check/beta", params={"user": str(u)}).json()["on"] for u in range(40)]
    assert 5 < sum(users) < 35  # about half, stable per user
    assert users == [
        http.get("/check/beta", params={"user": str(u)}).json()["on"] for u in range(40)
    ]
    http.put("/flags/off", json={"enabled": False}, headers=auth)
    assert http.get("/check/off", params={"user": "1"}).json()["on"] is False
    assert http.get("/flags").json() == {"flags": ["beta", "off"]}
    assert http.get("/check/nope", params={"user": "1"}).json()["on"] is False
    assert http.get("/flags/nope").status_code == 404


def test_feature_flags_under_dev(tmp_path: Path) -> None:
    server = Server(
        [
            "dev",
            "--config",
            str(FLAGS_CONFIG),
            "--persist-to",
            str(tmp_path / "state"),
            "--workerd",
            _workerd(),
        ],
        cwd=tmp_path,
        log_path=tmp_path / "flags.log",
    )
    with server, server.client() as http:
        _use_flags(http, "dev-admin-token")
    listed = run_cli(
        [
            "kv",
            "key",
            "list",
            "--namespace-id",
            "0ddba11000000000000000000000beef",
            "--persist-to",
            str(tmp_path / "state"),
        ],
        cwd=tmp_path,
    )
    assert b'"flag:beta"' in listed.stdout  # dev used the preview namespace


def test_feature_flags_at_two_locations(tmp_path: Path) -> None:
    binary = _workerd()
    centre, env = central(tmp_path)
    # The namespace of env.edge, under its id, in the centre's store before it starts.
    with edgekv.sync.open(tmp_path / "central", account_id=env["EDGEKV_ACCOUNT_ID"]) as kv:
        kv.create_namespace("feature-flags", namespace_id=FLAGS_ID)
    with centre:
        ams, lhr = (
            Server(
                [
                    "edge",
                    "--central",
                    centre.url,
                    "--location",
                    name,
                    "--env",
                    "edge",
                    "--config",
                    str(FLAGS_CONFIG),
                    "--workerd",
                    binary,
                ],
                cwd=tmp_path,
                log_path=tmp_path / f"{name}.log",
                env=env,
            )
            for name in ("ams", "lhr")
        )
        with ams, lhr, ams.client() as a, lhr.client() as b:
            _use_flags(a, "change-me")
            assert a.get("/flags/beta").json()["rollout"] == 50
            assert b.get("/flags/beta").json()["cacheStatus"] == "MISS"
            assert b.get("/flags/beta").json()["cacheStatus"] == "HIT"
            assert b.get("/flags").json() == {"flags": ["beta", "off"]}
