"""Python Workers written for Cloudflare run unchanged: under a real `edgekv dev` process and at
a real `edgekv edge` location (whose centre is a real `edgekv serve`): the `workers` module,
`class Default(WorkerEntrypoint)`, the binding's JavaScript spellings, a FastAPI app through
`asgi.fetch`, and one-line errors for what needs Cloudflare's JavaScript runtime."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import edgekv.sync
from tests.servers import wait_for
from tests.workers.processes import Server, central, run_cli
from tests.workers.projects import CLOUDFLARE_WORKER, FASTAPI_WORKER, NS_ID, write_project

VARS = '[vars]\nMESSAGE = "hello from wrangler.toml"\n'


def dev_server(root: Path) -> Server:
    return Server(
        ["dev", "--config", "wrangler.toml", "--persist-to", "state"],
        cwd=root,
        log_path=root / "dev.log",
    )


@pytest.fixture(scope="module")
def cf_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cloudflare")
    write_project(root, CLOUDFLARE_WORKER, bindings={"FOO": NS_ID})
    return root


@pytest.fixture(scope="module")
def cf_dev(cf_root: Path) -> Iterator[Server]:
    with dev_server(cf_root) as server:
        yield server
    assert server.proc.returncode == 0, server.log()


@pytest.fixture
def http(cf_dev: Server) -> Iterator[httpx.Client]:
    with cf_dev.client() as client:
        yield client


def test_cloudflares_binding_example_runs_as_written(http: httpx.Client) -> None:
    answer = http.get("/")
    assert (answer.status_code, answer.text) == (200, "baz")


def test_put_with_js_keyword_options_then_read_them_back(http: httpx.Client, cf_root: Path) -> None:
    before = int(time.time())
    assert http.put("/put", params={"key": "k1", "ttl": "600"}, content="v1").status_code == 201
    assert http.get("/get", params={"key": "k1"}).json() == {"value": "v1"}
    meta = http.get("/meta", params={"key": "k1"}).json()
    assert meta == {"value": "v1", "metadata": {"by": "cf"}, "cacheStatus": None}
    listed = http.get("/list", params={"prefix": "k1"}).json()
    assert listed == {
        "names": ["k1"],
        "metadata": [{"by": "cf"}],
        "list_complete": True,
        "cursor": None,
    }
    # expirationTtl=600 stored an absolute expiration 600 s ahead (seen by the kv command).
    keys = run_cli(
        ["kv", "key", "list", "--binding", "FOO", "--prefix", "k1", "--persist-to", "state"],
        cwd=cf_root,
    )
    assert keys.returncode == 0, keys.stderr
    (entry,) = json.loads(keys.stdout)
    assert before + 600 <= entry["expiration"] <= int(time.time()) + 600


def test_options_dict_and_json_type(http: httpx.Client) -> None:
    body = '{"name": "widget"}'
    assert http.put("/put-options", params={"key": "j"}, content=body).status_code == 201
    assert http.get("/json", params={"key": "j"}).json() == {"name": "widget", "same": "widget"}
    assert http.get("/meta", params={"key": "j"}).json()["metadata"] == {"opts": True}


def test_a_missing_key_reads_as_null(http: httpx.Client) -> None:
    assert http.get("/get", params={"key": "nope"}).json() == {"value": None}
    meta = http.get("/meta", params={"key": "nope"}).json()
    assert meta == {"value": None, "metadata": None, "cacheStatus": None}


def test_list_pages_with_limit_and_cursor(http: httpx.Client) -> None:
    for i in range(5):
        assert http.put("/put", params={"key": f"p:{i}", "ttl": "600"}, content="x").status_code
    first = http.get("/list", params={"prefix": "p:", "limit": "2"}).json()
    assert first["names"] == ["p:0", "p:1"] and first["list_complete"] is False
    second = http.get(
        "/list", params={"prefix": "p:", "limit": "2", "cursor": first["cursor"]}
    ).json()
    assert second["names"] == ["p:2", "p:3"]
    third = http.get(
        "/list", params={"prefix": "p:", "limit": "2", "cursor": second["cursor"]}
    ).json()
    assert third == {
        "names": ["p:4"],
        "metadata": [{"by": "cf"}],
        "list_complete": True,
        "cursor": None,
    }


def test_ctx_wait_until_in_its_javascript_spelling(http: httpx.Client) -> None:
    assert http.get("/later").status_code == 202
    wait_for(lambda: http.get("/get", params={"key": "later"}).json()["value"] == "done")


def test_an_invalid_option_is_the_bindings_error_and_a_500(
    http: httpx.Client, cf_dev: Server
) -> None:
    answer = http.get("/bad-ttl", params={"key": "t"})
    assert answer.status_code == 500
    cf_dev.wait_log(
        "KV PUT failed: 400 Invalid expiration_ttl of 5. Expiration TTL must be at least 60."
    )


# -- a FastAPI app through asgi.fetch ------------------------------------------------------------
@pytest.fixture(scope="module")
def fastapi_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fastapi")
    write_project(root, FASTAPI_WORKER, bindings={"FOO": NS_ID}, extra_toml=VARS)
    return root


@pytest.fixture(scope="module")
def fastapi_dev(fastapi_root: Path) -> Iterator[Server]:
    with dev_server(fastapi_root) as server:
        yield server
    assert server.proc.returncode == 0, server.log()


def check_fastapi_app(http: httpx.Client) -> None:
    """What a user of Cloudflare's FastAPI example sees, wherever the worker runs."""
    assert http.get("/").json() == {"message": "This is an example of FastAPI"}
    assert http.get("/env").json() == {
        "message": "Here is an example of getting an environment variable: hello from wrangler.toml"
    }
    put = http.put("/items/7", json={"name": "widget", "price": 2.5})
    assert (put.status_code, put.json()) == (200, {"name": "widget", "price": 2.5})
    assert http.get("/items/7").json() == {"name": "widget", "price": 2.5}
    assert http.get("/items").json() == ["item:7"]
    missing = http.get("/items/8")
    assert (missing.status_code, missing.json()) == (404, {"detail": "no such item"})
    invalid = http.put("/items/9", json={"name": "no price"})
    assert invalid.status_code == 422  # FastAPI's own validation answer
    assert invalid.json()["detail"][0]["loc"] == ["body", "price"]
    streamed = http.get("/stream")
    assert streamed.text == "chunk 0\nchunk 1\nchunk 2\n"
    assert streamed.headers["transfer-encoding"] == "chunked"
    # The lifespan ran once for all these requests, and its state reaches every handler.
    assert http.get("/lifespan").json() == {"starts": 1, "state": 1}


def test_cloudflares_fastapi_example_under_dev(fastapi_dev: Server, fastapi_root: Path) -> None:
    with fastapi_dev.client() as http:
        check_fastapi_app(http)

    # The background task of the PUT wrote after the response, into the same store.
    def audited() -> bool:
        got = run_cli(
            ["kv", "key", "get", "audit:7", "--binding", "FOO", "--persist-to", "state"],
            cwd=fastapi_root,
        )
        return got.stdout == b"written after the response"

    wait_for(audited, timeout=60)  # each check starts a CLI process: slow on a loaded machine


# -- at a location ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def centre(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    server, env = central(tmp_path_factory.mktemp("centre"))
    with server:
        yield server, env


def remote_namespace(env: dict[str, str], title: str) -> str:
    with edgekv.sync.open(
        env["EDGEKV_URL"], token=env["EDGEKV_API_TOKEN"], account_id=env["EDGEKV_ACCOUNT_ID"]
    ) as kv:
        return kv.create_namespace(title).id


def edge_server(root: Path, env: dict[str, str], central_url: str) -> Server:
    return Server(
        ["edge", "--central", central_url, "--location", "ams", "--config", "wrangler.toml"],
        cwd=root,
        log_path=root / "edge.log",
        env=env,
    )


def test_the_cloudflare_worker_at_a_location(
    centre: tuple[Server, dict[str, str]], tmp_path: Path
) -> None:
    server, env = centre
    ns_id = remote_namespace(env, "cf-worker")
    write_project(tmp_path, CLOUDFLARE_WORKER, bindings={"FOO": ns_id})
    with edge_server(tmp_path, env, server.url) as edge, edge.client() as http:
        assert http.get("/").text == "baz"
        assert http.put("/put", params={"key": "k", "ttl": "600"}, content="v").status_code == 201
        assert http.get("/meta", params={"key": "k"}).json()["value"] == "v"
        # A miss read twice: the second answer is the location's cached negative lookup.
        first = http.get("/meta", params={"key": "absent"}).json()
        assert first == {"value": None, "metadata": None, "cacheStatus": "MISS"}
        again = http.get("/meta", params={"key": "absent"}).json()
        assert again == {"value": None, "metadata": None, "cacheStatus": "HIT"}
        at_centre = run_cli(
            ["kv", "key", "get", "k", "--namespace-id", ns_id], cwd=tmp_path, env=env
        )
        assert at_centre.stdout == b"v"
    assert edge.stop() == 0


def test_the_fastapi_worker_at_a_location(
    centre: tuple[Server, dict[str, str]], tmp_path: Path
) -> None:
    server, env = centre
    ns_id = remote_namespace(env, "cf-fastapi")
    write_project(tmp_path, FASTAPI_WORKER, bindings={"FOO": ns_id}, extra_toml=VARS)
    with edge_server(tmp_path, env, server.url) as edge, edge.client() as http:
        check_fastapi_app(http)
        wait_for(
            lambda: (
                run_cli(
                    ["kv", "key", "get", "audit:7", "--namespace-id", ns_id], cwd=tmp_path, env=env
                ).stdout
                == b"written after the response"
            )
        )
    assert edge.stop() == 0
    assert "Traceback" not in edge.log()


# -- the config keys Python workers share with JavaScript ones ------------------------------------
ENV_WORKER = """
from workers import Response, WorkerEntrypoint


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        await self.env.FOO.put("where", self.env.MESSAGE)
        limits = getattr(self.env, "LIMITS", None)
        return Response.json({"message": self.env.MESSAGE, "limits": limits, "ns": self.env.FOO.id})
"""

TOP_ID, STAGING_ID, PREVIEW_ID = "1" * 32, "2" * 32, "3" * 32


def write_jsonc_project(root: Path) -> None:
    """A Python Worker configured by wrangler.jsonc, with an [env.staging] section whose
    binding has a preview_id, as wrangler's own templates write it."""
    (root / "src").mkdir(parents=True)
    (root / "src" / "entry.py").write_text(ENV_WORKER.lstrip())
    (root / "wrangler.jsonc").write_text(
        f"""
        // A Python Worker's config, in the JSON dialect wrangler reads.
        {{
          "name": "py-env",
          "main": "src/entry.py",
          "compatibility_flags": ["python_workers"],
          "kv_namespaces": [{{ "binding": "FOO", "id": "{TOP_ID}" }}],
          "vars": {{ "MESSAGE": "top level" }},
          "env": {{
            "staging": {{
              "kv_namespaces": [
                {{ "binding": "FOO", "id": "{STAGING_ID}", "preview_id": "{PREVIEW_ID}" }},
              ],
              "vars": {{ "MESSAGE": "staging", "LIMITS": {{ "max": 3 }} }},  /* a JSON var */
            }},
          }},
        }}
        """
    )


def test_a_python_worker_reads_wrangler_jsonc_env_sections_and_preview_ids(
    tmp_path: Path,
) -> None:
    write_jsonc_project(tmp_path)
    # No --config: wrangler.jsonc is found as wrangler finds it. --env staging picks the section,
    # and `dev` binds its preview_id.
    dev = Server(
        ["dev", "--persist-to", "state", "--env", "staging"],
        cwd=tmp_path,
        log_path=tmp_path / "dev.log",
    )
    with dev, dev.client() as http:
        assert http.get("/").json() == {
            "message": "staging",
            "limits": {"max": 3},
            "ns": PREVIEW_ID,
        }
    got = run_cli(
        ["kv", "key", "get", "where", "--namespace-id", PREVIEW_ID, "--persist-to", "state"],
        cwd=tmp_path,
    )
    assert got.stdout == b"staging", got.stderr
    plain = Server(["dev", "--persist-to", "state"], cwd=tmp_path, log_path=tmp_path / "dev2.log")
    with plain, plain.client() as http:
        assert http.get("/").json() == {"message": "top level", "limits": None, "ns": TOP_ID}


def test_at_a_location_the_env_sections_id_is_bound_not_its_preview_id(
    centre: tuple[Server, dict[str, str]], tmp_path: Path
) -> None:
    server, env = centre
    write_jsonc_project(tmp_path)
    # A location never creates namespaces: the centre gets the one the config names, by its id.
    created = run_cli(
        ["kv", "namespace", "create", "py-env staging", "--id", STAGING_ID], cwd=tmp_path, env=env
    )
    assert created.returncode == 0, created.stderr
    edge = Server(
        ["edge", "--central", server.url, "--location", "ams", "--env", "staging"],
        cwd=tmp_path,
        log_path=tmp_path / "edge.log",
        env=env,
    )
    with edge, edge.client() as http:
        assert http.get("/").json() == {
            "message": "staging",
            "limits": {"max": 3},
            "ns": STAGING_ID,
        }
    at_centre = run_cli(
        ["kv", "key", "get", "where", "--namespace-id", STAGING_ID], cwd=tmp_path, env=env
    )
    assert at_centre.stdout == b"staging"
