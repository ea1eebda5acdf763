"""Finding the workerd binary and running it as a child that never outlives edgekv.

workerd is run as the platform binary itself (not `npx workerd`, which puts `npm exec` and a
shell in between, so the PID edgekv holds would not be workerd's). It listens on a socket edgekv
bound and hands over (`--socket-fd`): the port is known before workerd starts, stays the same
across restarts and reloads, and connections wait in the backlog meanwhile. `--control-fd`
says when it is listening.

No orphan: the child asks the kernel for SIGKILL when its parent dies (`PR_SET_PDEATHSIG`, set
between fork and exec), runs in its own process group, and `stop()` ends that group.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import platform
import shutil
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import orjson

from edgekv.workers.config import ConfigError
from edgekv.workers.workerd.capnp import SOCKET_NAME

__all__ = ["INSTALL_HINT", "WorkerdError", "WorkerdProcess", "find_workerd"]

log = logging.getLogger("edgekv.workerd")

INSTALL_HINT = (
    "workerd not found: install it with `npm install workerd` beside the config "
    "(or pass --workerd PATH, or set EDGEKV_WORKERD)"
)
_PR_SET_PDEATHSIG = 1
_READY_TIMEOUT = 30.0
_STOP_TIMEOUT = 5.0


class WorkerdError(Exception):
    """workerd could not be started (the message says why, with its last output)."""


def _platform_package() -> str:
    machine = platform.machine().lower()
    arch = "arm64" if machine in ("aarch64", "arm64") else "64"
    system = {"darwin": "darwin", "win32": "windows"}.get(sys.platform, "linux")
    return f"workerd-{system}-{arch}"


def _native(path: Path) -> Path:
    """The platform binary behind npm's `workerd` launcher (a JS script when npm skipped the
    package's postinstall step, which otherwise puts the binary in its place)."""
    real = path.resolve()
    with contextlib.suppress(OSError), real.open("rb") as f:
        if f.read(2) != b"#!":
            return real
        # node_modules/workerd/bin/workerd -> node_modules/@cloudflare/workerd-<os>-<arch>/bin
        candidate = real.parents[2] / "@cloudflare" / _platform_package() / "bin" / "workerd"
        if candidate.is_file():
            return candidate
    return real


def find_workerd(explicit: str | Path | None, config_dir: Path) -> Path:
    """`--workerd PATH`, then `$EDGEKV_WORKERD`, then `node_modules/.bin/workerd` beside the
    config, then `workerd` on PATH. Missing: `ConfigError` with one line on how to install."""
    for given, origin in ((explicit, "--workerd"), (os.environ.get("EDGEKV_WORKERD"), None)):
        if given:
            path = Path(given)
            if not path.is_file():
                where = origin or "EDGEKV_WORKERD"
                raise ConfigError(f"{where}: no workerd binary at {path}")
            return _native(path)
    local = config_dir / "node_modules" / ".bin" / "workerd"
    if local.exists():
        return _native(local)
    on_path = shutil.which("workerd")
    if on_path:
        return _native(Path(on_path))
    raise ConfigError(INSTALL_HINT)


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: its own process group (what `stop()` ends),
    and SIGKILL when the parent dies."""
    os.setpgid(0, 0)
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    # The parent may have died before prctl took effect: then we are already an orphan.
    if os.getppid() == 1:
        os._exit(1)


class WorkerdProcess:
    """One workerd serving `config_file` on the listening socket `listen_fd`.

    `start()` returns once workerd listens (or raises `WorkerdError`); `stop()` ends it (and
    its process group). Its output goes to the `edgekv.workerd` log, line by line.
    """

    def __init__(self, binary: Path, config_file: Path, listen_fd: int, *, name: str) -> None:
        self.binary = binary
        self.config_file = config_file
        self.listen_fd = listen_fd
        self.name = name
        self.proc: asyncio.subprocess.Process | None = None
        self._pumps: list[asyncio.Task[None]] = []
        self._tail: list[str] = []
        self.on_line: Callable[[str], None] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    async def start(self) -> None:
        control_r, control_w = os.pipe()
        try:
            self.proc = await asyncio.create_subprocess_exec(
                str(self.binary),
                "serve",
                str(self.config_file),
                "config",
                f"--socket-fd={SOCKET_NAME}={self.listen_fd}",
                f"--control-fd={control_w}",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                pass_fds=(self.listen_fd, control_w),
                preexec_fn=_die_with_parent,
                cwd=str(self.config_file.parent),
            )
        except OSError as exc:
            os.close(control_r)
            raise WorkerdError(f"cannot run {self.binary}: {exc.strerror or exc}") from None
        finally:
            os.close(control_w)
        assert self.proc.stdout is not None
        self._pumps.append(asyncio.create_task(self._pump(self.proc.stdout)))
        try:
            await self._wait_listening(control_r)
        except BaseException:
            await self.stop()
            raise

    async def _wait_listening(self, control_r: int) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(control_r, "rb", 0)
        )
        assert self.proc is not None
        try:
            async with asyncio.timeout(_READY_TIMEOUT):
                while True:
                    line = await reader.readline()
                    if not line:  # workerd exited (or closed the control pipe) before listening
                        code = await self.proc.wait()
                        await self._drain_pumps()
                        raise WorkerdError(self._failure(f"workerd exited with status {code}"))
                    with contextlib.suppress(orjson.JSONDecodeError):
                        event = orjson.loads(line)
                        if isinstance(event, dict) and event.get("event") == "listen":
                            return
        except TimeoutError:
            raise WorkerdError(
                self._failure(f"workerd did not start listening within {_READY_TIMEOUT:.0f} s")
            ) from None
        finally:
            transport.close()

    def _failure(self, what: str) -> str:
        tail = " | ".join(line for line in self._tail[-8:] if line.strip())
        return f"{what}: {tail}" if tail else what

    async def _pump(self, stream: asyncio.StreamReader) -> None:
        while True:
            line = await stream.readline()
            if not line:
                return
            text = line.decode("utf-8", "replace").rstrip()
            self._tail = [*self._tail[-19:], text]
            if self.on_line is not None:
                self.on_line(text)
            else:
                log.warning("%s: %s", self.name, text)

    async def _drain_pumps(self) -> None:
        for task in self._pumps:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(task, 2.0)

    async def wait(self) -> int:
        assert self.proc is not None
        code = await self.proc.wait()
        await self._drain_pumps()
        return code

    async def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), _STOP_TIMEOUT)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # anything it left in its group
        for task in self._pumps:
            task.cancel()
        for task in self._pumps:
            with contextlib.suppress(BaseException):
                await task
        self._pumps.clear()
