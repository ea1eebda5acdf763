"""The public names are fixed (docs/public-api.md): pin them so a change is deliberate."""

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
    "edgekv.testing": ["SimClock", "SimLocation", "Simulation"],
    "edgekv.edge": ["CacheStats", "LocationCache", "RemoteError", "RemoteStore", "stats_payload"],
    "edgekv.store": [
        "Clock",
        "Entry",
        "KeyInfo",
        "NamespaceInfo",
        "NamespaceNotFound",
        "NamespaceTitleTaken",
        "Store",
        "StoreError",
        "StoreUnavailable",
        "TokenRecord",
        "TooManyNamespaces",
        "is_database_url",
        "open_store",
        "shown",
    ],
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


def test_the_public_page_names_every_public_package() -> None:
    page = (Path(__file__).resolve().parents[1] / "docs" / "public-api.md").read_text()
    for module, names in PUBLIC.items():
        assert f"`{module}`" in page, module
        for name in names:
            assert f"`{name}`" in page, f"{module}.{name}"


def test_the_store_protocol_is_the_one_edgekv_uses() -> None:
    import edgekv.edge
    import edgekv.store
    from edgekv._types import Store
    from edgekv.edge.cache import LocationCache
    from edgekv.store.memory import MemoryStore

    assert edgekv.store.Store is Store
    assert isinstance(MemoryStore(), edgekv.store.Store)
    assert edgekv.edge.LocationCache is LocationCache


def test_typed_marker_shipped() -> None:
    assert (Path(edgekv.__file__).parent / "py.typed").exists()


def test_exceptions_hierarchy() -> None:
    assert issubclass(edgekv.KVTypeError, edgekv.KVError)
    assert issubclass(edgekv.KVTypeError, TypeError)
    err = edgekv.KVError("KV GET failed: 404 gone", 404)
    assert err.status == 404 and err.message == "KV GET failed: 404 gone"
