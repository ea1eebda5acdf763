"""The whole binding-rules suite (tests/test_namespace.py), and the handle's namespace tests of
tests/test_client.py, through the remote binding and through a location cache, against a real
central server on loopback: the `store` fixture of tests/edge/conftest.py gives the engines
`remote` and `location`."""

from __future__ import annotations

from edgekv import KVNamespace
from edgekv._types import Store
from edgekv.edge.cache import LocationCache
from tests.test_client import (  # noqa: F401  (the handle's namespace tests, remotely too)
    test_namespace_handle_is_lazy_and_shared,
    test_namespace_management,
    test_titles_unique_and_bounded,
)
from tests.test_namespace import *  # noqa: F403  (collected again here, over the remote engines)
from tests.test_namespace_versions import *  # noqa: F403  (versions and the feed, remotely too)


async def test_get_with_metadata(ns: KVNamespace, store: Store) -> None:  # type: ignore[no-redef]
    """As the suite's, except `cache_status`: a location says where it served the read (here
    its own write: HIT); the plain remote binding involves no cache (None)."""
    status = "HIT" if isinstance(store, LocationCache) else None
    await ns.put("k", "v", metadata={"someMetadataKey": "someMetadataValue"})
    result = await ns.get_with_metadata("k")
    assert result.value == "v"
    assert result.metadata == {"someMetadataKey": "someMetadataValue"}
    assert result.cache_status == status
    expected: dict[str, object] = {
        "value": "v",
        "metadata": {"someMetadataKey": "someMetadataValue"},
    }
    if status:
        expected["cacheStatus"] = status
    assert result.version is not None  # the centre's version, through a location too
    expected["version"] = result.version
    assert result.to_dict() == expected
    await ns.put("plain", "v")
    assert (await ns.get_with_metadata("plain")).metadata is None
    typed = await ns.get_with_metadata("k", "bytes")
    assert typed.value == b"v"
