"""Export and import from Python (`ns.export()`, `ns.import_entries()`, `export_to`,
`import_from`) on every engine; tests/edge/test_transfer_remote.py runs them again through a
central server and a location."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pytest

import edgekv
import edgekv.sync
from edgekv import Client, ExportEntry, ExportFormatError, KVError, KVNamespace
from tests.conftest import FakeClock

BIG = bytes(range(256)) * 4096  # 1 MiB, not UTF-8


async def fill(ns: KVNamespace, clock: FakeClock) -> None:
    now = int(clock())
    await ns.put("text", "plain text")
    await ns.put("binary", b"\x80\x81\xfe\xff")
    await ns.put("big", BIG, metadata={"size": len(BIG)})
    await ns.put("meta", "m", metadata={"nested": {"l": [1, 2.5, None, "é"]}})
    await ns.put("expiring", "e", expiration=now + 3600, metadata="s")
    await ns.put("é/ü key", "unicode")
    await ns.put("😀", "")


async def entries_of(ns: KVNamespace) -> list[ExportEntry]:
    return [entry async for entry in ns.export()]


async def test_export_is_every_live_entry_in_byte_order(ns: KVNamespace, clock: FakeClock) -> None:
    await fill(ns, clock)
    await ns.put("gone", "x", expiration_ttl=60)
    clock.advance(60)  # "gone" expires now
    entries = await entries_of(ns)
    keys = [e.key for e in entries]
    assert keys == sorted(keys, key=str.encode)
    assert "gone" not in keys and len(keys) == 7
    by_key = {e.key: e for e in entries}
    assert by_key["big"].value == BIG and by_key["big"].metadata == {"size": len(BIG)}
    assert by_key["binary"].value == b"\x80\x81\xfe\xff"
    assert by_key["expiring"].expiration == int(clock()) - 60 + 3600
    assert by_key["expiring"].metadata == "s"
    assert by_key["meta"].metadata == {"nested": {"l": [1, 2.5, None, "é"]}}
    assert by_key["😀"].value == b""


async def test_import_into_an_empty_namespace_is_byte_identical(
    kv: Client, ns: KVNamespace, clock: FakeClock
) -> None:
    await fill(ns, clock)
    copy = await kv.create_namespace("copy")
    result = await copy.import_entries(ns.export())
    assert (result.written, result.skipped_expired) == (7, 0)
    assert await entries_of(copy) == await entries_of(ns)
    got = await copy.get_with_metadata("big", "bytes")
    assert got.value == BIG and got.metadata == {"size": len(BIG)}


async def test_the_snapshot_does_not_see_later_writes(kv: Client, ns: KVNamespace) -> None:
    await ns.put_many([(f"k{i:04}", f"v{i}") for i in range(2500)])
    async with ns.export(page_size=100) as snapshot:
        seq = snapshot.seq
        first = await snapshot.page()
        await ns.put("k0000", "changed")  # already read
        await ns.put("k2000", "changed")  # not read yet
        await ns.delete("k2001")
        await ns.put("k9999", "new")
        rest = [e async for e in snapshot]
    entries = first + rest
    assert len(entries) == 2500 and snapshot.count == 2500
    assert {e.key: e.value for e in entries}["k2000"] == b"v2000"
    assert "k2001" in {e.key for e in entries} and "k9999" not in {e.key for e in entries}
    assert isinstance(seq, int) and snapshot.header is not None
    assert snapshot.header.namespace_id == ns.id and snapshot.header.title == "test"
    after = {e.key: e.value for e in await entries_of(ns)}
    assert after["k2000"] == b"changed" and "k2001" not in after and "k9999" in after


async def test_export_of_an_unknown_namespace(kv: Client) -> None:
    with pytest.raises(KVError) as info:
        await entries_of(kv.namespace("0" * 32))
    assert info.value.status == 404


async def test_import_skips_what_expired_and_keeps_short_expirations(
    ns: KVNamespace, clock: FakeClock
) -> None:
    now = int(clock())
    result = await ns.import_entries(
        [
            ExportEntry("past", b"x", now - 10),
            ExportEntry("now", b"x", now),
            ExportEntry("soon", b"x", now + 30),  # below the binding's 60 s: imported as is
            {"key": "later", "value": "eA==", "base64": True, "expiration": now + 120},
            {"key": "ttl", "value": "x", "expiration_ttl": 600},
        ]
    )
    assert (result.written, result.skipped_expired) == (3, 2)
    assert {e.key: e.expiration for e in await entries_of(ns)} == {
        "later": now + 120,
        "soon": now + 30,
        "ttl": now + 600,
    }


async def test_import_merges_and_is_idempotent(ns: KVNamespace, kv: Client) -> None:
    await ns.put("mine", "stays")
    await ns.put("shared", "old")
    items = [{"key": "shared", "value": "new", "metadata": {"v": 2}}, {"key": "x", "value": "y"}]
    await ns.import_entries(items)
    once = await entries_of(ns)
    await ns.import_entries(items)
    assert await entries_of(ns) == once
    assert {e.key: e.value for e in once} == {"mine": b"stays", "shared": b"new", "x": b"y"}


async def test_a_bad_item_stops_the_import_after_writing_what_came_before(
    ns: KVNamespace,
) -> None:
    items = [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}, {"key": "", "value": "3"}]
    items.append({"key": "d", "value": "4"})
    with pytest.raises(ExportFormatError) as info:
        await ns.import_entries(items)
    error = info.value
    assert (error.line, error.written) == (3, 2)
    assert error.reason == "key '': Key name cannot be empty."
    assert [e.key for e in await entries_of(ns)] == ["a", "b"]  # nothing after it


async def test_export_to_and_import_from_a_file(
    kv: Client, ns: KVNamespace, clock: FakeClock, tmp_path: Path
) -> None:
    await fill(ns, clock)
    path = tmp_path / "export.ndjson"
    with path.open("wb") as file:
        header, count = await ns.export_to(file)
    assert count == 7 and header.namespace_id == ns.id
    lines = path.read_bytes().splitlines()
    assert orjson.loads(lines[0])["seq"] == header.seq
    assert orjson.loads(lines[-1]) == {"edgekv_export_end": True, "count": 7}
    copy = await kv.create_namespace("copy")
    result = await copy.import_from(path)
    assert result.written == 7 and result.complete and result.header == header
    assert await entries_of(copy) == await entries_of(ns)


async def test_a_refused_file_writes_nothing(kv: Client, ns: KVNamespace, tmp_path: Path) -> None:
    for start in range(0, 12000, 6000):  # more than one import batch
        await ns.put_many([(f"k{i:05}", "v") for i in range(start, start + 6000)])
    buffer = io.BytesIO()
    await ns.export_to(buffer)
    data = buffer.getvalue()
    target = await kv.create_namespace("target")
    lines = data.splitlines(keepends=True)
    # A malformed line near the end: refused whole, before the first batch is written.
    bad = [*lines[:-3], b'{"key": "k", "value": 1}\n', *lines[-2:]]
    with pytest.raises(ExportFormatError) as info:
        await target.import_from(io.BytesIO(b"".join(bad)))
    assert info.value.line == len(lines) - 2 and info.value.written == 0
    # No trailer: refused unless partial.
    with pytest.raises(ExportFormatError) as info:
        await target.import_from(io.BytesIO(b"".join(lines[:-1])))
    assert "incomplete" in info.value.reason
    assert await entries_of(target) == []
    result = await target.import_from(io.BytesIO(b"".join(lines[:-1])), partial=True)
    assert result.written == 12000 and not result.complete


async def test_wrangler_bulk_json_imports_directly(ns: KVNamespace, tmp_path: Path) -> None:
    path = tmp_path / "bulk.json"
    path.write_bytes(
        orjson.dumps(
            [
                {"key": "a", "value": "1", "metadata": {"m": True}},
                {"key": "b", "value": "gA==", "base64": True, "expiration_ttl": 3600},
            ]
        )
    )
    result = await ns.import_from(path)
    assert result.written == 2 and result.header is None
    assert {e.key: e.value for e in await entries_of(ns)} == {"a": b"1", "b": b"\x80"}
    path.write_bytes(b'[{"key": "a", "value": "1"}, {"key": "b"}]')
    with pytest.raises(ExportFormatError) as info:
        await ns.import_from(path)
    assert "item [1]" in info.value.reason


def test_the_sync_twin(tmp_path: Path) -> None:
    with edgekv.sync.open(tmp_path / "data") as kv:
        ns = kv.create_namespace("sync")
        ns.put_many([(f"k{i}", f"v{i}") for i in range(1500)])
        with ns.export() as snapshot:
            assert isinstance(snapshot.seq, int)
            entries = list(snapshot)
        assert len(entries) == 1500 and entries[0] == ExportEntry("k0", b"v0")
        copy = kv.create_namespace("copy")
        assert copy.import_entries(ns.export()).written == 1500
        buffer = io.BytesIO()
        assert ns.export_to(buffer)[1] == 1500
        buffer.seek(0)
        assert kv.create_namespace("file").import_from(buffer).written == 1500
        assert list(copy.export()) == entries
