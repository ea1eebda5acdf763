"""The README's Python tour runs as written (in a scratch directory)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


async def test_async_tour_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    tour = next(b for b in python_blocks() if "async with edgekv.open" in b)
    body = textwrap.indent(tour, "    ")
    namespace: dict[str, object] = {}
    exec(compile(f"async def _tour():\n{body}", "README.md", "exec"), namespace)
    await namespace["_tour"]()  # type: ignore[operator]
    assert (tmp_path / "data").is_dir()


def test_sync_tour_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    tour = next(b for b in python_blocks() if "edgekv.sync.open" in b)
    exec(compile(tour, "README.md", "exec"), {})
    assert capsys.readouterr().out == "v\n"
