"""`edgekv dev` as a real process on loopback: a worker with a KV binding over the embedded store,
both entry-point styles, module-global bindings, wait_until, crashes, persistence, signals,
reload, and the `kv` commands on the same --persist-to folder."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import wait_for
from tests.workers.processes import Server, run_cli
from tests.workers.projects import DEFAULT_CLASS_WORKER, NS_ID, ON_FETCH_WORKER, write_project


def dev_server(root: Path, *extra: str) -> Server:
    return Server(
        ["dev", "--config", "wrangler.toml", "--persist-to", "state", *extra],
        cwd=root,
        log_path=root / "dev.log",
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("on_fetch")
    write_project(root, ON_FETCH_WORKER)
    return root


@pytest.fixture(scope="module")
def server(project: Path) -> Iterator[Server]:
    with dev_server(project) as srv:
        yield srv
    assert srv.proc is not None and srv.proc.returncode == 0, srv.log()


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


# -- the binding ---------------------------------------------------------------------------------
def test_put_get_delete_through_the_binding(http: httpx.Client) -> None:
    assert http.get("/kv/to-do:1").status_code == 404
    put = http.put("/kv/to-do:1", content="buy milk")
    assert (put.status_code, put.text) == (201, "stored")
    got = http.get("/kv/to-do:1")
    assert (got.status_code, got.text) == (200, "buy milk")
    assert got.headers["content-type"] == "text/plain;charset=UTF-8"
    assert http.delete("/kv/to-do:1").status_code == 204
    assert http.get("/kv/to-do:1").status_code == 404


def test_malformed_chunked_framing_is_400(server: Server, http: httpx.Client) -> None:
    from tests.api.test_server import BAD_CHUNKS, raw_http

    for body in BAD_CHUNKS:
        request = b"PUT /kv/chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        answer = raw_http(server.port, request + body)
        assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert http.get("/kv/chunked").status_code == 404  # nothing was written


def test_readyz_is_answered_by_the_runtime_after_a_store_read(http: httpx.Client) -> None:
    r = http.get("/readyz")
    assert (r.status_code, r.text) == (200, "ready\n")


def test_head_gets_the_headers_without_the_body(http: httpx.Client) -> None:
    http.put("/kv/h", content="twelve bytes")
    head = http.head("/kv/h")
    assert head.status_code == 200
    assert head.headers["content-length"] == "12" and head.content == b""


def test_binding_is_a_module_global_at_import_and_at_run_time(http: httpx.Client) -> None:
    http.put("/kv/g", content="via env")
    assert http.get("/global/g").text == "via env"
    assert http.get("/import-time").text == NS_ID


def test_validation_errors_of_the_binding_reach_the_worker(http: httpx.Client) -> None:
    # ttl < 60 raises KVError inside the worker, which does not catch it: a 500.
    assert http.put("/kv/short?ttl=30", content="x").status_code == 500
    assert http.put("/kv/long?ttl=120", content="x").status_code == 201


def test_request_fields_and_json_response(http: httpx.Client) -> None:
    response = http.post(
        "/echo?a=1&a=2&b=%C3%A9", content="héllo", headers={"x-test": "value", "Host": "example"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-worker"] == "yes"
    assert response.json() == {
        "method": "POST",
        "url": "http://example/echo?a=1&a=2&b=%C3%A9",
        "x": "value",
        "body": "héllo",
        "query": {"a": "1", "b": "é"},
    }


def test_binary_and_streamed_bodies(http: httpx.Client, server: Server, project: Path) -> None:
    assert http.get("/bytes").content == bytes(range(256))
    big = bytes(range(256)) * 1024  # 256 KiB: more than one stream chunk
    value = project / "big.bin"
    value.write_bytes(big)
    args = ["--path", str(value), "--binding", "KV", "--persist-to", "state"]
    put = run_cli(["kv", "key", "put", "streamed", *args], cwd=project)
    assert put.returncode == 0, put.stderr
    assert http.get("/stream").content == big


def test_healthz_is_answered_by_the_runtime(http: httpx.Client) -> None:
    response = http.get("/healthz")
    assert (response.status_code, response.text) == (200, "ok\n")
    assert http.head("/healthz").status_code == 200


# -- ctx.wait_until ------------------------------------------------------------------------------
def test_wait_until_runs_after_the_response(http: httpx.Client) -> None:
    started = time.monotonic()
    response = http.get("/later/bg")
    assert response.status_code == 202
    assert time.monotonic() - started < 0.5  # the work sleeps 0.5 s before writing
    assert http.get("/kv/bg").status_code == 404
    wait_for(lambda: http.get("/kv/bg").text == "done", timeout=10)


# -- failures ------------------------------------------------------------------------------------
def test_a_crashing_handler_is_a_short_500_with_the_traceback_in_the_log(
    http: httpx.Client, server: Server
) -> None:
    response = http.get("/crash")
    assert response.status_code == 500
    assert "boom-secret-detail" not in response.text
    assert "Traceback" not in response.text
    assert len(response.content) < 100
    wait_for(lambda: "boom-secret-detail" in server.log())
    log = server.log()
    assert "Traceback (most recent call last)" in log
    assert "GET /crash: the worker raised an exception" in log
    # and the server keeps serving
    http.put("/kv/after-crash", content="fine")
    assert http.get("/kv/after-crash").text == "fine"


def test_a_handler_returning_something_else_than_a_response_is_a_500(
    http: httpx.Client, server: Server
) -> None:
    assert http.get("/not-a-response").status_code == 500
    wait_for(lambda: "the worker returned str, expected a Response" in server.log())


# -- the kv commands on the same folder ----------------------------------------------------------
def test_the_namespace_of_a_binding_is_created_on_first_use(server: Server, project: Path) -> None:
    listed = run_cli(["kv", "namespace", "list", "--persist-to", "state"], cwd=project)
    assert listed.returncode == 0, listed.stderr
    assert {"id": NS_ID, "title": "test-worker-KV"} in json.loads(listed.stdout)


def test_the_cli_reads_what_the_worker_wrote_and_the_other_way_round(
    http: httpx.Client, server: Server, project: Path
) -> None:
    http.put("/kv/from-worker", content="written by the worker")
    by_binding = ["--binding", "KV", "--persist-to", "state"]
    got = run_cli(["kv", "key", "get", "from-worker", *by_binding], cwd=project)
    assert (got.returncode, got.stdout) == (0, b"written by the worker")
    by_id = ["--namespace-id", NS_ID, "--persist-to", "state"]
    put = run_cli(["kv", "key", "put", "from-cli", "written by the CLI", *by_id], cwd=project)
    assert put.returncode == 0, put.stderr
    assert http.get("/kv/from-cli").text == "written by the CLI"


# -- the class entry point -----------------------------------------------------------------------
def test_class_default_entry_point(tmp_path: Path) -> None:
    write_project(tmp_path, DEFAULT_CLASS_WORKER)
    with dev_server(tmp_path) as srv, srv.client() as http:
        assert http.get("/k").status_code == 404
        assert http.put("/k", content="v").status_code == 201
        assert http.get("/k").text == "v"
        wait_for(lambda: http.get("/k.audit").text == "written after the response")
    assert srv.stop() == 0


# -- lifetime ------------------------------------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_data_survives_a_clean_stop_and_restart(tmp_path: Path, sig: int) -> None:
    write_project(tmp_path, ON_FETCH_WORKER)
    srv = dev_server(tmp_path).start()
    with srv.client() as http:
        assert http.put("/kv/durable", content="still here").status_code == 201
        http.get("/later/late")  # wait_until work still pending at the signal: drained
    assert srv.stop(sig) == 0, srv.log()
    assert "edgekv dev: stopped" in srv.log()
    with dev_server(tmp_path) as again, again.client() as http:
        assert http.get("/kv/durable").text == "still here"
        assert http.get("/kv/late").text == "done"


def test_the_worker_reloads_when_its_file_changes(tmp_path: Path) -> None:
    def version(text: str) -> str:
        return (
            "from edgekv.workers import Response\n\n"
            f"async def on_fetch(request, env):\n    return Response({text!r})\n"
        )

    config = write_project(tmp_path, version("v1"))
    module = config.parent / "src" / "worker.py"
    with dev_server(tmp_path) as srv, srv.client() as http:
        assert http.get("/").text == "v1"
        module.write_text(version("v2"))
        wait_for(lambda: http.get("/").text == "v2", timeout=10)
        module.write_text("def on_fetch(:\n")  # broken: the previous version keeps serving
        wait_for(lambda: "invalid syntax" in srv.log() or "was never closed" in srv.log())
        assert "still serving the previous version" in srv.log()
        assert http.get("/").text == "v2"
        module.write_text(version("v3"))
        wait_for(lambda: http.get("/").text == "v3", timeout=10)
        assert "reloaded src/worker.py" in srv.log()


def test_a_sibling_module_change_reloads_too(tmp_path: Path) -> None:
    worker = (
        "from edgekv.workers import Response\nimport greeting\n\n"
        "async def on_fetch(request, env, ctx):\n    return Response(greeting.TEXT)\n"
    )
    config = write_project(tmp_path, worker)
    sibling = config.parent / "src" / "greeting.py"
    sibling.write_text('TEXT = "hello"\n')
    with dev_server(tmp_path) as srv, srv.client() as http:
        assert http.get("/").text == "hello"
        sibling.write_text('TEXT = "bonjour"\n')
        wait_for(lambda: http.get("/").text == "bonjour", timeout=10)


def test_an_invalid_config_stops_the_process_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "wrangler.toml").write_text('name = "x"\nkv_namespaces = [{ binding = "A" }]\n')
    result = run_cli(["dev", "--config", "wrangler.toml"], cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.decode().splitlines()
    assert lines == [
        'error: wrangler.toml: "main" is missing (the worker module, e.g. main = "src/worker.py")'
    ]


def test_a_busy_port_is_one_line(tmp_path: Path) -> None:
    import socket

    write_project(tmp_path, ON_FETCH_WORKER)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = str(sock.getsockname()[1])
        result = run_cli(["dev", "--port", port, "--persist-to", "state"], cwd=tmp_path)
    assert result.returncode == 1
    stderr = result.stderr.decode()
    assert "Traceback" not in stderr and "backtrace" not in stderr
    assert stderr.splitlines()[-1] == (
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use"
    )


def test_a_config_change_reloads_bindings_and_vars(tmp_path: Path) -> None:
    worker = (
        "from edgekv.workers import Response\n\n"
        "async def on_fetch(request, env):\n"
        "    return Response(', '.join(sorted(vars(env))))\n"
    )
    config = write_project(tmp_path, worker)
    with dev_server(tmp_path) as srv, srv.client() as http:
        assert http.get("/").text == "KV"
        text = config.read_text().replace(
            "]\n", f'  , {{ binding = "OTHER", id = "{"a" * 32}" }}\n]\n[vars]\nMODE = "x"\n'
        )
        config.write_text(text)
        wait_for(lambda: http.get("/").text == "KV, MODE, OTHER", timeout=10)
        config.write_text("this is not toml = = =\n")  # broken: the previous version stays
        wait_for(lambda: "invalid TOML" in srv.log())
        assert http.get("/").text == "KV, MODE, OTHER"
    listed = run_cli(["kv", "namespace", "list", "--persist-to", "state"], cwd=tmp_path)
    assert {"id": "a" * 32, "title": "test-worker-OTHER"} in json.loads(listed.stdout)


def test_the_start_says_which_store_and_warns_over_a_central_data_directory(
    tmp_path: Path,
) -> None:
    write_project(tmp_path, ON_FETCH_WORKER)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "credentials.json").write_text("{}")  # what `edgekv serve` writes
    with dev_server(tmp_path) as srv:
        log = srv.wait_log("KV bindings")
    assert f"store SQLite in {(tmp_path / 'state').resolve()}" in log
    assert (
        "warning: state is the data directory of an `edgekv serve` (it holds credentials.json)"
        in log
    )
