"""The workerd that `edgekv dev` starts: reloaded on change, restarted after a crash, stopped
with edgekv, and never left behind when edgekv is killed; a missing binary is one line."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests import workerd
from tests.servers import wait_for
from tests.workers.processes import Server, run_cli
from tests.workers.workerd.js import PREVIEW_ID, Caller, write_project

pytestmark = pytest.mark.skipif(not workerd.available(), reason="node/npm not installed")


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(p) for p in (task / "children").read_text().split()]
    return out


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is gone, only not yet reaped


def workerd_pid(server: Server) -> int:
    kids = [
        p for p in children(server.proc.pid) if "workerd" in Path(f"/proc/{p}/cmdline").read_text()
    ]
    assert len(kids) == 1, kids
    return kids[0]


def dev_server(root: Path, *extra: str) -> Server:
    return Server(
        [
            "dev",
            "--persist-to",
            str(root / "state"),
            "--workerd",
            str(workerd.ensure_installed()),
            *extra,
        ],
        cwd=root,
        log_path=root / "dev.log",
    )


def test_reload_crash_restart_and_a_clean_stop(tmp_path: Path) -> None:
    ns = PREVIEW_ID
    config = f"""{{
      // JSONC, an [env.NAME] section and a preview namespace
      "name": "life",
      "main": "src/worker.js",
      "kv_namespaces": [{{ "binding": "KV", "id": "unused-in-dev", "preview_id": "{ns}" }}],
      "env": {{
        "test": {{
          "kv_namespaces": [{{ "binding": "KV", "id": "x", "preview_id": "{ns}" }}],
          "vars": {{ "GREETING": "from env.test", "CONF": 1 }},
        }},
      }},
    }}"""
    root = write_project(tmp_path, config=config, config_name="wrangler.jsonc")
    server = dev_server(root, "--env", "test")
    with server, httpx.Client(base_url=server.url, timeout=30) as http:
        call = Caller(http)
        assert http.get("/vars").json() == {
            "greeting": "from env.test",
            "conf": 1,
            "version": "v1",
        }
        call.ok("put", "kept", "across restarts")
        first = workerd_pid(server)

        # A change of the worker's file: a new workerd serves the new code on the same port.
        worker = root / "src" / "worker.js"
        worker.write_text(worker.read_text().replace('"v1"', '"v2"'))
        wait_for(lambda: http.get("/vars").json()["version"] == "v2", timeout=20)
        wait_for(lambda: not alive(first), timeout=10)
        second = workerd_pid(server)
        assert second != first
        # A broken version is reported and the previous one keeps serving.
        worker.write_text(worker.read_text().replace("export default", "export default ]"))
        server.wait_log("still serving the previous version", timeout=20)
        assert http.get("/vars").json()["version"] == "v2"
        assert workerd_pid(server) == second

        # workerd crashes: logged, restarted, the data still there.
        os.kill(second, signal.SIGKILL)
        server.wait_log(f"workerd (pid {second}) exited with status -9; restarting it", 10)
        wait_for(lambda: http.get("/healthz").status_code == 200, timeout=20)
        assert call.ok("get", "kept") == "across restarts"
        third = workerd_pid(server)
        assert third not in (first, second)
    assert server.proc.returncode == 0
    assert not alive(third)
    assert "edgekv dev: stopped" in server.log()
    # The namespace used was the preview one of env.test.
    listed = run_cli(
        ["kv", "key", "list", "--namespace-id", PREVIEW_ID, "--persist-to", "state"], cwd=root
    )
    assert b'"kept"' in listed.stdout


def test_no_orphan_when_edgekv_is_killed(tmp_path: Path) -> None:
    root = write_project(tmp_path)
    server = dev_server(root)
    with server:
        child = workerd_pid(server)
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait(10)
        wait_for(lambda: not alive(child), timeout=10, message="workerd outlived edgekv")


def test_sigint_stops_both(tmp_path: Path) -> None:
    root = write_project(tmp_path)
    server = dev_server(root)
    with server:
        child = workerd_pid(server)
        assert server.stop(signal.SIGINT) == 0
    assert not alive(child)


def test_a_missing_workerd_is_one_line(tmp_path: Path) -> None:
    root = write_project(tmp_path)
    env = {"PATH": "/usr/bin:/bin", "EDGEKV_WORKERD": ""}
    result = run_cli(["dev", "--port", "0"], cwd=root, env=env)
    assert result.returncode == 1
    assert result.stderr.decode().strip() == (
        "error: workerd not found: install it with `npm install workerd` beside the config "
        "(or pass --workerd PATH, or set EDGEKV_WORKERD)"
    )
    bad = run_cli(["dev", "--workerd", str(root / "nope")], cwd=root)
    assert bad.stderr.decode().strip() == f"error: --workerd: no workerd binary at {root / 'nope'}"


def test_a_worker_that_does_not_load_stops_the_command(tmp_path: Path) -> None:
    root = write_project(tmp_path)
    (root / "src" / "worker.js").write_text("export default {\n  syntax error here\n};\n")
    args = ["dev", "--port", "0", "--workerd", str(workerd.ensure_installed())]
    started = time.monotonic()
    result = run_cli(args, cwd=root)
    assert result.returncode == 1
    last = result.stderr.decode().strip().splitlines()[-1]
    assert re.match(r"error: cannot start: workerd exited with status \d+: ", last), last
    assert "SyntaxError" in last or "Unexpected" in last, last
    assert time.monotonic() - started < 30
