"""The examples run as their READMEs say: `edgekv dev --config examples/<name>/wrangler.toml`."""

from __future__ import annotations

from pathlib import Path

from tests.servers import wait_for
from tests.workers.processes import Server, run_cli

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
