"""Real `edgekv` processes on loopback for the worker and CLI tests: start one, wait until it
answers GET /healthz, talk HTTP to it, stop it with a signal (by PID) and read its log."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

EDGEKV = str(Path(sys.executable).parent / "edgekv")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """`edgekv <args>` as a child process, its stdout and stderr in `log_path`."""

    def __init__(
        self,
        args: list[str],
        *,
        cwd: Path,
        log_path: Path,
        env: dict[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.args = [EDGEKV, *args, "--port", str(self.port)]
        self.cwd = cwd
        self.log_path = log_path
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Server:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.args, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.args} exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop(signal.SIGKILL)
        raise RuntimeError(f"{self.args} did not answer /healthz in {timeout}s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Send `sig` to the child (by PID) and return its exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        return self.proc.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10.0)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop()


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


def wait_for(condition: object, timeout: float = 10.0, interval: float = 0.05) -> None:
    """Poll `condition()` until it is true (or fail after `timeout` seconds)."""
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def central(root: Path) -> tuple[Server, dict[str, str]]:
    """`edgekv serve` over SQLite in `root/central`, with a fresh account and token; returns
    the server (not started) and the environment a client of it needs."""
    import secrets

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
