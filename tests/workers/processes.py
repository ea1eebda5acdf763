"""Real `edgekv` processes on loopback for the worker and CLI tests: `Server` runs the installed
`edgekv` command (tests/servers.py starts it, waits until it answers GET /healthz and stops it
by PID); `run_cli` runs one to completion."""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

from tests.servers import EDGEKV, ServerProcess


class Server(ServerProcess):
    """`edgekv <args> --port PORT` as a child process, its stdout and stderr in `log_path`, with
    this process's environment plus `env`."""

    def __init__(
        self,
        args: list[str],
        *,
        cwd: Path,
        log_path: Path,
        env: dict[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        super().__init__(
            [EDGEKV, *args],
            cwd=cwd,
            env={**os.environ, **(env or {})},
            log_path=log_path,
            port=port,
        )


def run_cli(
    args: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess[bytes]:
    """`edgekv <args>` to completion, output captured."""
    return subprocess.run(
        [EDGEKV, *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def central(root: Path) -> tuple[Server, dict[str, str]]:
    """`edgekv serve` over SQLite in `root/central`, with a fresh account and token; returns
    the server (not started) and the environment a client of it needs."""
    env = {
        "EDGEKV_ACCOUNT_ID": secrets.token_hex(16),
        "EDGEKV_API_TOKEN": f"edgekv-test-{secrets.token_hex(16)}",
    }
    server = Server(
        ["serve", "--data", str(root / "central"), "--quiet"],
        cwd=root,
        log_path=root / "central.log",
        env=env,
    )
    return server, {**env, "EDGEKV_URL": server.url}
