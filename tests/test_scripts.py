"""The repository's scripts as a newcomer runs them: `scripts/serve` on a fresh virtual
environment installs only what serving needs, then serves."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.servers import ROOT, ServerProcess, clean_env

DEV_ONLY = {"pytest", "mypy", "ruff", "matplotlib", "hypothesis", "cloudflare", "uvicorn"}
RUNTIME = {"edgekv", "granian", "orjson", "httpx", "asyncpg", "click", "python-multipart"}


def test_scripts_serve_installs_only_the_runtime_dependencies(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    server = ServerProcess(
        [str(ROOT / "scripts" / "serve"), "--data", str(tmp_path / "data"), "--quiet"],
        env=clean_env({"EDGEKV_VENV": str(venv)}),
        log_path=tmp_path / "serve.log",
    )
    with server.start(timeout=300):  # a fresh environment: pip installs first
        pass
    assert server.proc.returncode == 0, server.log()
    listed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "list", "--format", "freeze"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    installed = {line.split("==")[0].lower() for line in listed.stdout.splitlines()}
    assert installed >= RUNTIME, installed
    assert not DEV_ONLY & installed, DEV_ONLY & installed
