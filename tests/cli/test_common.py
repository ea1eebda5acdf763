"""What every command shares (cli/_common.py), with real `edgekv` processes: output on stdout
arrives whole whatever the reader's speed, and a stdout that cannot take it is an error exit
with one line, never a silent exit 0."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

import edgekv.sync
from tests.servers import EDGEKV

BIG = bytes(range(256)) * 1200  # 300 KiB, binary: several times a pipe's 64 KiB buffer


@pytest.fixture
def local(tmp_path: Path) -> tuple[Path, str]:
    """A local store in tmp_path/.edgekv with a namespace holding BIG and 3,000 listed keys
    (their JSON listing is well over 64 KiB); returns (cwd, namespace id)."""
    with edgekv.sync.open(tmp_path / ".edgekv") as kv:
        ns = kv.create_namespace("out")
        ns.put("BIG", BIG)
        ns.put_many([(f"key-{i:05d}-{'x' * 40}", "v") for i in range(3000)])
        return tmp_path, ns.id


# PYTHONUNBUFFERED=1 (common in containers) makes stdout an unbuffered file, whose writes are
# single write(2) calls: the case where the 64 KiB truncation was seen.
ENVS = {"buffered": {}, "unbuffered": {"PYTHONUNBUFFERED": "1"}}


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEKV_")}
    env.pop("PYTHONUNBUFFERED", None)
    return {**env, **extra}


def _slow_read(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, bytes, str]:
    """Run `edgekv args` with its stdout on a pipe nobody reads for 1.5 s (the command has
    written by then), then read everything."""
    proc = subprocess.Popen(
        [EDGEKV, *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    time.sleep(1.5)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err.decode()


@pytest.mark.parametrize("mode", list(ENVS))
def test_output_arrives_whole_to_a_slow_reader(local: tuple[Path, str], mode: str) -> None:
    cwd, ns = local
    env = _env(ENVS[mode])
    code, out, err = _slow_read(["kv", "key", "get", "BIG", "--namespace-id", ns], cwd, env)
    assert (code, len(out)) == (0, len(BIG)), err
    assert out == BIG

    code, out, err = _slow_read(["kv", "key", "list", "--namespace-id", ns], cwd, env)
    assert code == 0, err
    assert len(out) > 3 * 65536
    assert len(json.loads(out)) == 3001

    # The README's pipeline: `key list | bulk delete -` with a reader that starts late.
    lister = subprocess.Popen(
        [EDGEKV, "kv", "key", "list", "--namespace-id", ns],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
    )
    assert lister.stdout is not None
    time.sleep(1.5)
    deleted = subprocess.run(
        [EDGEKV, "kv", "bulk", "delete", "-", "--namespace-id", ns],
        cwd=cwd,
        env=env,
        stdin=lister.stdout,
        capture_output=True,
        timeout=60,
        check=False,
    )
    lister.stdout.close()
    assert lister.wait(30) == 0
    assert deleted.returncode == 0, deleted.stderr
    assert "Deleted 3001 key(s)." in deleted.stderr.decode()


@pytest.mark.parametrize("mode", list(ENVS))
def test_a_closed_stdout_is_an_error_exit(local: tuple[Path, str], mode: str) -> None:
    cwd, ns = local
    read_end, write_end = os.pipe()
    proc = subprocess.Popen(
        [EDGEKV, "kv", "key", "get", "BIG", "--namespace-id", ns],
        cwd=cwd,
        env=_env(ENVS[mode]),
        stdout=write_end,
        stderr=subprocess.PIPE,
    )
    os.close(write_end)
    os.close(read_end)  # the reader is gone before the command writes: EPIPE
    _, raw = proc.communicate(timeout=60)
    err = raw.decode()
    assert proc.returncode == 1, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: cannot write to stdout (the reader closed it)")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_stdout_is_an_error_exit(local: tuple[Path, str]) -> None:
    cwd, ns = local
    with open("/dev/full", "wb") as full:
        result = subprocess.run(
            [EDGEKV, "kv", "key", "list", "--namespace-id", ns],
            cwd=cwd,
            env=_env({}),
            stdout=full,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert (
        result.stderr.decode().splitlines() == [result.stderr.decode().strip()]
        and "error: cannot write to stdout (No space left on device)" in result.stderr.decode()
    )
