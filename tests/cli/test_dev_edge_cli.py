"""`edgekv dev` / `edgekv edge` refuse a broken project before listening: one line, exit 1 (a
worker that raises at import also shows its traceback). In process: nothing is served."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import Run
from tests.workers.projects import ON_FETCH_WORKER, write_project

CASES = {
    "missing main": (
        'name = "x"\n',
        None,
        'error: wrangler.toml: "main" is missing (the worker module, e.g. main = "src/worker.py")',
    ),
    "main file missing": (
        'main = "src/gone.py"\n',
        None,
        "error: wrangler.toml: main file 'src/gone.py' not found",
    ),
    "binding not an identifier": (
        'main = "src/worker.py"\nkv_namespaces = [{ binding = "MY-KV", id = "x" }]\n',
        ON_FETCH_WORKER,
        "error: wrangler.toml: kv_namespaces[0]: binding 'MY-KV' is not a valid Python identifier",
    ),
    "malformed toml": (
        'main = "src/worker.py\n',
        ON_FETCH_WORKER,
        "error: wrangler.toml: invalid TOML:",
    ),
    "no entry point": (
        'main = "src/worker.py"\n',
        "X = 1\n",
        "error: src/worker.py: no entry point",
    ),
    "syntax error": ('main = "src/worker.py"\n', "def on_fetch(:\n", "error: src/worker.py:1: "),
}


@pytest.mark.parametrize(("toml", "worker", "message"), CASES.values(), ids=CASES.keys())
@pytest.mark.parametrize("command", ["dev", "edge"])
def test_a_broken_project_is_one_line_and_exit_1(
    run: Run, tmp_path: Path, command: str, toml: str, worker: str | None, message: str
) -> None:
    if worker is not None:
        (tmp_path / "src").mkdir()
        (tmp_path / "src" / "worker.py").write_text(worker)
    (tmp_path / "wrangler.toml").write_text(toml)
    args = ["--central", "http://127.0.0.1:1", "--location", "x"] if command == "edge" else []
    env = {"EDGEKV_API_TOKEN": "t", "EDGEKV_ACCOUNT_ID": "a" * 32}
    result = run(command, *args, env=env)
    assert result.code == 1
    assert result.stderr.startswith(message), result.stderr


def test_a_missing_config_file(run: Run) -> None:
    result = run("dev", "--config", "nope/wrangler.toml")
    assert (result.code, result.stderr) == (1, "error: config file nope/wrangler.toml not found\n")


def test_a_worker_raising_at_import_shows_its_traceback(run: Run, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from edgekv.cli import cli

    write_project(tmp_path, "import os\nraise RuntimeError('no config for ' + os.name)\n")
    result = CliRunner().invoke(cli, ["dev"])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[-1] == (
        "error: src/worker.py: importing the worker raised RuntimeError: no config for posix"
    )


def test_bad_options(run: Run, tmp_path: Path) -> None:
    write_project(tmp_path, ON_FETCH_WORKER)
    bad_port = run("dev", "--port", "http")
    assert bad_port.code == 2 and "Invalid value for '--port'" in bad_port.stderr
    bad_url = run("edge", "--central", "127.0.0.1:8787", "--location", "x")
    assert bad_url.stderr == (
        "error: --central must be an http:// or https:// URL, got '127.0.0.1:8787'\n"
    )
