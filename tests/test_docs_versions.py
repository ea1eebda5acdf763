"""docs/versions.md: its Python examples run as written and print what the page says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[1] / "docs" / "versions.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", PAGE.read_text(), re.S)


def test_compare_and_swap_counter_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    example = next(b for b in blocks("python") if "async def increment" in b)
    exec(compile(example, "docs/versions.md", "exec"), {"__name__": "__main__"})
    assert capsys.readouterr().out == "50\n"


def test_tail_the_changes_runs(capsys: pytest.CaptureFixture[str]) -> None:
    example = next(b for b in blocks("python") if "async def tail" in b)
    exec(compile(example, "docs/versions.md", "exec"), {"__name__": "__main__"})
    printed = capsys.readouterr().out
    shown = re.search(r"\nprints\n\n```\n(.*?)```", PAGE.read_text(), re.S)
    assert shown is not None and printed == shown.group(1)
