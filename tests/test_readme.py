"""The README's Python tour is examples/tour.py, shown as it is, and it runs — twice in a row, as
a newcomer re-running it would — printing what its comments say; the sync snippet runs too."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TOUR = ROOT / "examples" / "tour.py"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_the_readme_shows_the_tour_file_as_it_is() -> None:
    assert TOUR.read_text() in python_blocks()


def test_the_tour_runs_and_runs_again(tmp_path: Path) -> None:
    expected = [
        "buy milk",
        "b'buy milk'",
        "walk dog {'someMetadataKey': 'someValue'}",
        "{'to-do:123': 'buy milk', 'nope': None}",
        "buy milk",
        "['to-do:123', 'to-do:124']",
        "KV PUT failed: 400 Invalid expiration_ttl of 5. Expiration TTL must be at least 60.",
        "None",
    ]
    for _ in range(2):
        run = subprocess.run(
            [sys.executable, str(TOUR)], cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert run.returncode == 0, run.stderr
        assert run.stdout.splitlines() == expected
    assert (tmp_path / "data").is_dir()


def test_sync_snippet_runs_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    snippet = next(b for b in python_blocks() if "edgekv.sync.open" in b)
    for _ in range(2):
        exec(compile(snippet, "README.md", "exec"), {})
    assert capsys.readouterr().out == "v\nv\n"
