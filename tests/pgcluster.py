"""A throwaway PostgreSQL cluster for tests: `with running() as dsn: ...`.

The cluster lives in a fresh temporary directory, listens on 127.0.0.1 on a free port (its unix
socket in that directory, never in a system one), trusts loopback connections and keeps
`fsync=on` so durability tests mean something. It is stopped (by `pg_ctl stop`, else by the
postmaster's own PID) and removed when the block ends.

Server binaries are found on PATH or in Debian's /usr/lib/postgresql/<ver>/bin; when there are
none and we are root, `scripts/ensure-postgres` installs Debian's package. PostgreSQL refuses to
run as root, so as root the cluster runs as the `postgres` system user (created if missing).

`fresh_database(dsn)` gives every test an empty database; `restart(dsn)`, `stop(dsn)` and
`start(dsn)` drive the same cluster for fault tests (they block: call them through
`asyncio.to_thread` while traffic runs).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

__all__ = ["Cluster", "cluster", "fresh_database", "restart", "running", "start", "stop"]

ROOT = Path(__file__).resolve().parent.parent
PG_USER = "postgres"  # both the OS user that runs the server and the database superuser

_clusters: dict[int, Cluster] = {}  # by port, so DSN-based helpers find their cluster


def _find_bindir() -> Path | None:
    found = shutil.which("initdb")
    if found is not None:
        # /usr/local/bin may hold symlinks: the real directory has every binary side by side.
        real = Path(found).resolve().parent
        if all((real / b).exists() for b in ("pg_ctl", "postgres")):
            return real
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return versions[-1].parent if versions else None


def bindir() -> Path:
    """The directory of initdb/pg_ctl/postgres, installing Debian's package if we may."""
    found = _find_bindir()
    if found is not None:
        return found
    if os.geteuid() != 0:
        raise RuntimeError(
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found and not root: "
            "install them (Debian: apt-get install postgresql) or run scripts/ensure-postgres"
        )
    subprocess.run(["bash", str(ROOT / "scripts" / "ensure-postgres")], check=True)
    found = _find_bindir()
    if found is None:
        raise RuntimeError("scripts/ensure-postgres ran but initdb is still not found")
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """One initdb'd data directory and the server running on it."""

    def __init__(self) -> None:
        self.bin = bindir()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            _ensure_os_user()
        self.base = Path(tempfile.mkdtemp(prefix="edgekv-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self.port = 0
        if self.as_root:
            # The server user must reach its directory; mkdtemp makes it root-only.
            pw = pwd.getpwnam(PG_USER)
            os.chown(self.base, pw.pw_uid, pw.pw_gid)

    @property
    def dsn(self) -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", PG_USER, "--", *cmd]
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, cwd=self.base, check=False
        )

    def _check(self, proc: subprocess.CompletedProcess[str], what: str) -> None:
        if proc.returncode != 0:
            log = self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""
            raise RuntimeError(f"{what} failed ({proc.returncode}):\n{proc.stderr}\n{log}")

    def init(self) -> None:
        proc = self._run(
            "initdb", "-D", str(self.data), "-U", PG_USER, "--auth=trust",
            "--encoding=UTF8", "--no-locale", "--no-sync",
        )  # fmt: skip
        self._check(proc, "initdb")
        # Trust only loopback TCP (and the private socket directory); nothing else may connect.
        (self.data / "pg_hba.conf").write_text(
            "local all all trust\n"
            "host all all 127.0.0.1/32 trust\n"
        )  # fmt: skip
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# edgekv test cluster\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.base}'\n"
                "fsync = on\n"
                "synchronous_commit = on\n"
                "max_connections = 200\n"
                "shared_buffers = 32MB\n"
            )

    def start(self) -> None:
        """Start on the current port, or on a new free one when there is none yet or it was
        taken meanwhile (another process may grab a port between our probe and the bind)."""
        for attempt in range(5):
            if self.port == 0 or attempt > 0:
                self.port = _free_port()
            proc = self._run(
                "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                "-o", f"-p {self.port}", "start",
            )  # fmt: skip
            if proc.returncode == 0:
                _clusters[self.port] = self
                return
            if attempt == 4 or "could not bind" not in self.log.read_text(errors="replace"):
                self._check(proc, "pg_ctl start")
        raise AssertionError("unreachable")

    def start_same_port(self) -> None:
        """Start again on the port clients already know (after `stop`)."""
        proc = self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
            "-o", f"-p {self.port}", "start",
        )  # fmt: skip
        self._check(proc, "pg_ctl start")

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def stop(self, mode: str = "fast") -> None:
        """`fast` disconnects clients and shuts down cleanly; `immediate` is a crash (no
        checkpoint), after which the next start replays WAL."""
        proc = self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
        if proc.returncode == 0:
            return
        pid = self.postmaster_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGQUIT)  # the postmaster's own "immediate shutdown"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.1)

    def restart(self, mode: str = "fast", down_for: float = 0.0) -> None:
        self.stop(mode)
        time.sleep(down_for)
        self.start_same_port()

    def remove(self) -> None:
        _clusters.pop(self.port, None)
        shutil.rmtree(self.base, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ensure_os_user() -> None:
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_USER],
            check=True,
        )


@contextlib.contextmanager
def running_cluster() -> Iterator[Cluster]:
    """A started cluster (the object, for tests that stop and start it)."""
    c = Cluster()
    try:
        c.init()
        c.start()
        yield c
    finally:
        try:
            c.stop()
        finally:
            c.remove()


@contextlib.contextmanager
def running() -> Iterator[str]:
    """The DSN (superuser, database `postgres`) of a throwaway cluster, removed afterwards."""
    with running_cluster() as c:
        yield c.dsn


def cluster(dsn: str) -> Cluster:
    """The running cluster a DSN (of `running()` or `fresh_database`) points at."""
    port = urlsplit(dsn).port
    if port is None or port not in _clusters:
        raise KeyError(f"no test cluster serves {dsn}")
    return _clusters[port]


def stop(dsn: str, mode: str = "fast") -> None:
    cluster(dsn).stop(mode)


def start(dsn: str) -> None:
    cluster(dsn).start_same_port()


def restart(dsn: str, mode: str = "fast", down_for: float = 0.0) -> None:
    cluster(dsn).restart(mode, down_for)


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + name))


async def fresh_database(dsn: str) -> str:
    """Create an empty, uniquely named database on the cluster of `dsn`; return its DSN."""
    name = "edgekv_" + secrets.token_hex(6)
    con = await asyncpg.connect(with_database(dsn, "postgres"), timeout=30)
    try:
        await con.execute(f'CREATE DATABASE "{name}"')
    finally:
        await con.close()
    return with_database(dsn, name)
