"""Conditional writes through a location (versions-and-changes.md): never answered from the
cache, always decided at the centre, and a success installs the location's copy with the
centre's version (read-your-writes); a failure drops the copy."""

from __future__ import annotations

import pytest

from edgekv import KVConflict
from tests.edge.conftest import World


async def test_conditional_writes_go_to_the_centre_and_update_the_copy(world: World) -> None:
    await world.admin.put("k", "centre")
    central_version = (await world.admin.get_with_metadata("k")).version
    ams = await world.location("ams")
    cached = await ams.ns.get_with_metadata("k", cache_ttl=3600)
    assert cached.version == central_version and cached.cache_status == "MISS"
    await world.admin.put("k", "changed elsewhere")  # the location's copy is now stale
    with pytest.raises(KVConflict) as conflict:
        await ams.ns.put("k", "mine", if_match=central_version)  # decided at the centre
    assert conflict.value.version == (await world.admin.get_with_metadata("k")).version
    assert world.central.calls["put"] == 1  # the failure reached the centre, nothing else
    # The failed write dropped the stale copy: the next read asks the centre.
    reads = world.central.reads
    fresh = await ams.ns.get_with_metadata("k", cache_ttl=3600)
    assert fresh.value == "changed elsewhere" and world.central.reads == reads + 1
    await ams.ns.put("k", "mine", if_match=fresh.version)
    after = await ams.ns.get_with_metadata("k", cache_ttl=3600)
    assert (after.value, after.cache_status) == ("mine", "HIT")
    assert after.version == (await world.admin.get_with_metadata("k")).version
    assert world.central.reads == reads + 1  # read-your-writes from the installed copy
    await ams.ns.delete("k", if_match=after.version)
    assert await ams.ns.get("k", cache_ttl=3600) is None
    assert await world.admin.get("k") is None
