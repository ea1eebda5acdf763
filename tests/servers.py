"""Real server processes on loopback for the tests that need them.

- `ServerProcess(command)`: a command (`edgekv serve|dev|edge ...`) started as a child process
  on a free loopback port (`--port` is appended), its stdout and stderr appended to a log file;
  `start()` waits until GET /healthz answers 200, `stop()` signals it by PID (SIGTERM by
  default) and SIGKILLs it if it does not exit in time. It can be started again (same port).
- `CentralProcess(options)`: `python -m edgekv serve OPTIONS` for one account, with that
  account's credentials in EDGEKV_ACCOUNT_ID / EDGEKV_API_TOKEN (or none: it bootstraps its own).
- `free_port()`, `wait_for(condition)` (poll until true, with a deadline), `wait_healthy(url)`
  and `wait_ready(servers)` (several started processes at once).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Self

import httpx

ROOT = Path(__file__).resolve().parent.parent
EDGEKV = str(Path(sys.executable).parent / "edgekv")  # the installed console script
NS_PATH = "/client/v4/accounts/{account}/storage/kv/namespaces"


def free_port() -> int:
    """A port nothing listens on at the moment, on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    condition: Callable[[], object],
    timeout: float = 10.0,
    interval: float = 0.05,
    message: str | Callable[[], str] = "",
) -> None:
    """Poll `condition()` until it is true; AssertionError (`message`) after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            text = message() if callable(message) else message
            raise AssertionError(text or f"condition not met within {timeout}s")
        time.sleep(interval)


def healthy(url: str) -> bool:
    """Whether GET `url`/healthz answers 200 (one probe)."""
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200
    return False


def wait_healthy(url: str, timeout: float = 20.0) -> None:
    """Wait until the server at `url` answers GET /healthz with 200."""
    wait_for(lambda: healthy(url), timeout, message=f"{url} did not become healthy in {timeout}s")


def clean_env(variables: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without its EDGEKV_* variables, unbuffered, plus `variables`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEKV_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(variables or {})
    return env


class ServerProcess:
    """`command --port PORT` as a child process in `cwd`, with `env` (default: this process's);
    its stdout and stderr are appended to `log_path` (discarded without one)."""

    def __init__(
        self,
        command: list[str],
        *,
        cwd: Path = ROOT,
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [*command, "--port", str(self.port)]
        self.cwd = cwd
        self.env = dict(os.environ if env is None else env)
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        assert self._proc is not None, f"{self.args} was never started"
        return self._proc

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def launch(self) -> Self:
        """Start the process without waiting for it (see `wait_ready`)."""
        with contextlib.ExitStack() as stack:
            out: int | IO[bytes] = subprocess.DEVNULL
            if self.log_path is not None:
                out = stack.enter_context(self.log_path.open("ab"))
            self._proc = subprocess.Popen(
                self.args, cwd=self.cwd, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        return self

    def start(self, timeout: float = 30.0) -> Self:
        """Start the process and wait until it answers GET /healthz."""
        wait_ready([self.launch()], timeout)
        return self

    def ready(self) -> bool:
        """Whether it answers GET /healthz; RuntimeError (with its log) if it has exited."""
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.args} exited with {self.proc.returncode}:\n{self.log()}")
        return healthy(self.url)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Send `sig` to the child by PID (if it still runs) and return its exit status. If it
        does not exit within `timeout` s: SIGKILL, then `subprocess.TimeoutExpired`."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def kill(self) -> None:
        """SIGKILL by PID: nothing is flushed, as in a crash."""
        if self.running():
            self.proc.kill()
            self.proc.wait(10)

    def log(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def wait_log(self, text: str, timeout: float = 5.0) -> str:
        """The log once it holds `text` (access lines are written in batches)."""
        wait_for(
            lambda: text in self.log(),
            timeout,
            message=lambda: f"{text!r} not in the server log:\n{self.log()}",
        )
        return self.log()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10.0)

    def __enter__(self) -> Self:
        """Start it (unless it runs already); stopped at the end of the block."""
        return self if self.running() else self.start()

    def __exit__(self, *exc_info: object) -> None:
        if self.running():
            self.stop()


def wait_ready(servers: Sequence[ServerProcess], timeout: float) -> None:
    """Wait until every one of `servers` (launched, starting side by side) answers GET /healthz.
    If one exits or they take longer than `timeout` s, all of them are killed (SIGKILL)."""
    pending = list(servers)

    def all_ready() -> bool:
        pending[:] = [server for server in pending if not server.ready()]
        return not pending

    def late() -> str:
        return f"{pending[0].args} did not answer /healthz in {timeout}s:\n{pending[0].log()}"

    try:
        wait_for(all_ready, timeout, message=late)
    except BaseException:
        for server in servers:
            server.kill()
        raise


class CentralProcess(ServerProcess):
    """`python -m edgekv serve OPTIONS` for one account (a fresh one unless given). With
    `credentials`, the account and `token` reach the server as EDGEKV_ACCOUNT_ID /
    EDGEKV_API_TOKEN; without, it bootstraps its own. The environment is otherwise this
    process's without EDGEKV_* variables, plus `env`."""

    def __init__(
        self,
        options: list[str],
        *,
        account: str | None = None,
        token: str | None = None,
        credentials: bool = True,
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        port: int | None = None,
    ) -> None:
        self.account = account or secrets.token_hex(16)
        self.token = token or secrets.token_urlsafe(30)
        variables = dict(env or {})
        if credentials:
            variables.update(EDGEKV_ACCOUNT_ID=self.account, EDGEKV_API_TOKEN=self.token)
        super().__init__(
            [sys.executable, "-m", "edgekv", "serve", *options],
            env=clean_env(variables),
            log_path=log_path,
            port=port,
        )

    @property
    def api(self) -> str:
        return self.url + "/client/v4"

    @property
    def namespaces(self) -> str:
        return self.url + NS_PATH.format(account=self.account)
