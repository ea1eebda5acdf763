"""The export is the namespace exactly as of its header's seq while writers keep writing, on
every engine: imported into an empty namespace it is byte-identical to the state at that seq
rebuilt from the change feed (tests/exportload.py). Over REST and the CLI:
tests/api/test_routes_export.py and tests/cli/test_kv_transfer.py."""

from __future__ import annotations

from edgekv import Client, KVNamespace
from tests.exportload import Load, expected_at, populate, state_of


async def test_an_export_taken_under_writes_is_exact_at_its_seq(
    kv: Client, ns: KVNamespace
) -> None:
    await populate(ns)
    load = Load(ns).start()
    try:
        await load.until(50)  # writers are going
        async with ns.export(page_size=100) as snapshot:
            seq = snapshot.seq
            during = load.done
            copy = await kv.create_namespace("copy")
            result = await copy.import_entries(_slowly(snapshot, load))
        assert load.done >= during + 60, "writers did not write during the export"
    finally:
        await load.stop()
    expected = await expected_at(ns, seq)
    assert result.written == len(expected) == snapshot.count
    assert await state_of(copy) == expected
    assert await state_of(ns) != expected  # the writers did change the namespace meanwhile


async def _slowly(snapshot, load):  # type: ignore[no-untyped-def]
    """The snapshot's entries, with a few acknowledged writes between pages."""
    async for rows in snapshot.pages():
        for row in rows:
            yield row
        await load.until(load.done + 2)
