"""`edgekv kv key watch`: a real child process following a namespace's changes, on the local
store (written by other processes meanwhile) and on a central server (--url), stopped by
SIGINT as a user stops it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import Run
from tests.workers.processes import Server, central


class Watcher:
    """`python -m edgekv kv key watch ...` with its stdout read line by line."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edgekv", "kv", "key", "watch", *args],
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(json.loads(line))

    def wait_for(self, n: int, timeout: float = 20) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.lines) < n and time.monotonic() < deadline:
            assert self.proc.poll() is None, self.stderr()
            time.sleep(0.05)
        assert len(self.lines) >= n, (self.lines, self.stderr())
        return self.lines

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(15)

    def stderr(self) -> str:
        if self.proc.poll() is None:
            return "(running)"
        assert self.proc.stderr is not None
        return self.proc.stderr.read().decode()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._reader.join(10)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def watchers() -> Iterator[list[Watcher]]:
    started: list[Watcher] = []
    yield started
    for watcher in started:
        watcher.close()


def _settle() -> None:
    time.sleep(1.5)  # the child imports edgekv and starts at the head before we write


def test_watch_the_local_store(run: Run, tmp_path: Path, watchers: list[Watcher]) -> None:
    ns_id = run("kv", "namespace", "create", "watched").json()["id"]
    select = ["--namespace-id", ns_id]
    watcher = Watcher(select, tmp_path)
    watchers.append(watcher)
    prefixed = Watcher([*select, "--prefix", "user/"], tmp_path)
    watchers.append(prefixed)
    _settle()
    # Other processes write the same store (CliRunner opens it on its own connection).
    assert run("kv", "key", "put", "user/1", "hello", *select, "--metadata", '{"a":1}').code == 0
    assert run("kv", "key", "put", "other", "x", *select).code == 0
    assert run("kv", "key", "delete", "user/1", *select).code == 0
    lines = watcher.wait_for(3)
    assert [(c["op"], c["key"]) for c in lines] == [
        ("put", "user/1"),
        ("put", "other"),
        ("delete", "user/1"),
    ]
    assert lines[0]["metadata"] == {"a": 1} and isinstance(lines[0]["version"], str)
    assert [c["key"] for c in prefixed.wait_for(2)] == ["user/1", "user/1"]
    assert watcher.interrupt() == 0 and "Traceback" not in watcher.stderr()
    # Resuming after the first change sees the two after it.
    resumed = Watcher([*select, "--since", str(lines[0]["seq"])], tmp_path)
    watchers.append(resumed)
    assert [c["seq"] for c in resumed.wait_for(2)] == [lines[1]["seq"], lines[2]["seq"]]
    assert resumed.interrupt() == 0


def test_watch_errors_are_one_line(run: Run, tmp_path: Path) -> None:
    out = run("kv", "key", "watch", "--namespace-id", "0" * 32)
    assert out.code == 1 and "not found" in out.stderr
    ns_id = run("kv", "namespace", "create", "w").json()["id"]
    out = run("kv", "key", "watch", "--namespace-id", ns_id, "--since", "99999")
    assert out.code == 1 and "ahead of the newest change" in out.stderr
    out = run("kv", "key", "watch", "--namespace-id", ns_id, "--since", "-1")
    assert out.code == 2


@pytest.fixture(scope="module")
def centre(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    server, env = central(tmp_path_factory.mktemp("watch"))
    with server:
        yield server, env


def test_watch_a_central_server(
    run: Run,
    tmp_path: Path,
    centre: tuple[Server, dict[str, str]],
    watchers: list[Watcher],
) -> None:
    _, env = centre
    ns_id = run("kv", "namespace", "create", "remote watched", env=env).json()["id"]
    watcher = Watcher(["--namespace-id", ns_id], tmp_path, env)
    watchers.append(watcher)
    _settle()
    assert run("kv", "key", "put", "k", "v", "--namespace-id", ns_id, env=env).code == 0
    lines = watcher.wait_for(1)
    assert lines[0]["key"] == "k" and lines[0]["op"] == "put"
    assert watcher.interrupt() == 0
