"""Running `edgekv` commands in process (click's CliRunner) for the CLI tests."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from edgekv.cli import cli


@dataclass
class Outcome:
    code: int
    stdout: bytes
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def text(self) -> str:
        return self.stdout.decode()


Run = Callable[..., Outcome]


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    """`run("kv", "key", "get", ...)` in `tmp_path` (the local store is `tmp_path/.edgekv`).
    Asserts that failures are one line `error: ...` and never a traceback."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # `dev` puts the worker's directory there
    for name in ("EDGEKV_URL", "EDGEKV_API_TOKEN", "EDGEKV_ACCOUNT_ID"):
        monkeypatch.delenv(name, raising=False)

    def invoke(
        *args: str, input: bytes | str | None = None, env: dict[str, str] | None = None
    ) -> Outcome:
        result = CliRunner().invoke(cli, list(args), input=input, env=env, catch_exceptions=False)
        outcome = Outcome(result.exit_code, result.stdout_bytes, result.stderr)
        if outcome.code != 0:
            lines = outcome.stderr.splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), outcome.stderr
        assert "Traceback" not in outcome.stderr
        return outcome

    return invoke
