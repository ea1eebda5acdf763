"""Where edgekv finds workerd: --workerd, $EDGEKV_WORKERD, node_modules/.bin beside the config,
PATH; npm's launcher script resolved to the platform binary; one line when there is none."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgekv.workers.config import ConfigError
from edgekv.workers.workerd.process import INSTALL_HINT, _platform_package, find_workerd


def binary(path: Path, content: bytes = b"\x7fELF...") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    path.chmod(0o755)
    return path


@pytest.fixture(autouse=True)
def _no_ambient(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("EDGEKV_WORKERD", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-path"))


def test_the_order_of_places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    with pytest.raises(ConfigError) as info:
        find_workerd(None, project)
    assert str(info.value) == INSTALL_HINT
    on_path = binary(tmp_path / "empty-path" / "workerd")
    assert find_workerd(None, project) == on_path
    beside = binary(project / "node_modules" / "workerd" / "bin" / "workerd")
    link = project / "node_modules" / ".bin" / "workerd"
    link.parent.mkdir(parents=True)
    link.symlink_to("../workerd/bin/workerd")
    assert find_workerd(None, project) == beside
    from_env = binary(tmp_path / "env" / "workerd")
    monkeypatch.setenv("EDGEKV_WORKERD", str(from_env))
    assert find_workerd(None, project) == from_env
    explicit = binary(tmp_path / "explicit" / "workerd")
    assert find_workerd(explicit, project) == explicit


def test_a_launcher_script_is_resolved_to_the_platform_binary(tmp_path: Path) -> None:
    modules = tmp_path / "node_modules"
    binary(modules / "workerd" / "bin" / "workerd", b"#!/usr/bin/env node\nrequire('...')\n")
    (modules / ".bin").mkdir()
    (modules / ".bin" / "workerd").symlink_to("../workerd/bin/workerd")
    native = binary(modules / "@cloudflare" / _platform_package() / "bin" / "workerd")
    assert find_workerd(None, tmp_path) == native


def test_a_named_binary_that_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"^--workerd: no workerd binary at .*nope$"):
        find_workerd(tmp_path / "nope", tmp_path)
    monkeypatch.setenv("EDGEKV_WORKERD", str(tmp_path / "gone"))
    with pytest.raises(ConfigError, match=r"^EDGEKV_WORKERD: no workerd binary at .*gone$"):
        find_workerd(None, tmp_path)
