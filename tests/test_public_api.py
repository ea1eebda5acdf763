"""The public names are fixed (interfaces.md): pin them so a change is deliberate."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import edgekv

PUBLIC = {
    "edgekv": [
        "Change",
        "Client",
        "Export",
        "ExportEntry",
        "ExportFormatError",
        "ExportHeader",
        "ImportResult",
        "KVConflict",
        "KVError",
        "KVNamespace",
        "KVTypeError",
        "KeyListEntry",
        "ListResult",
        "Namespace",
        "ValueStream",
        "ValueType",
        "ValueWithMetadata",
        "__version__",
        "open",
    ],
    "edgekv.sync": ["Client", "Export", "KVNamespace", "open"],
    "edgekv.workers": [
        "HEALTH_PATH",
        "ConfigError",
        "Env",
        "ExecutionContext",
        "Headers",
        "KVBinding",
        "Request",
        "Response",
        "Worker",
        "WorkerApp",
        "WorkerConfig",
        "WorkerEntrypoint",
        "WorkerImportError",
        "load_config",
        "load_worker",
    ],
    "edgekv.api": ["EdgeKVApp", "create_app"],
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_all_is_pinned(module: str) -> None:
    mod = importlib.import_module(module)
    assert sorted(mod.__all__) == sorted(PUBLIC[module])
    for name in mod.__all__:
        assert hasattr(mod, name), name


def test_private_modules_declare_all() -> None:
    package = Path(edgekv.__file__).parent
    for path in sorted(package.rglob("*.py")):
        if path.name == "__main__.py":
            continue
        text = path.read_text()
        assert "__all__" in text, f"{path.relative_to(package)} has no __all__"


def test_typed_marker_shipped() -> None:
    assert (Path(edgekv.__file__).parent / "py.typed").exists()


def test_exceptions_hierarchy() -> None:
    assert issubclass(edgekv.KVTypeError, edgekv.KVError)
    assert issubclass(edgekv.KVTypeError, TypeError)
    err = edgekv.KVError("KV GET failed: 404 gone", 404)
    assert err.status == 404 and err.message == "KV GET failed: 404 gone"
