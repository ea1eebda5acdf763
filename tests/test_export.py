"""The export format (edgekv._export): encoding, and decoding with the line and the reason of
every refusal."""

from __future__ import annotations

import base64

import orjson
import pytest

from edgekv import ExportEntry, ExportFormatError, ExportHeader
from edgekv._export import (
    ExportDecoder,
    encode_entries,
    encode_entry,
    encode_header,
    encode_trailer,
)

NOW = 1_700_000_000
HEADER = ExportHeader("a" * 32, "My tasks", 123, NOW)


def export_bytes(*entries: ExportEntry) -> bytes:
    return encode_header(HEADER) + encode_entries(list(entries)) + encode_trailer(len(entries))


def decode(data: bytes, *, partial: bool = False) -> tuple[ExportDecoder, list[ExportEntry]]:
    decoder = ExportDecoder(data.splitlines(keepends=True), now=NOW, partial=partial)
    return decoder, [entry for _, entry in decoder]


def refusal(data: bytes, *, partial: bool = False) -> ExportFormatError:
    with pytest.raises(ExportFormatError) as info:
        decode(data, partial=partial)
    return info.value


def test_lines_are_the_documented_format() -> None:
    data = export_bytes(
        ExportEntry("a", b"text value"),
        ExportEntry("b", b"\x80\x80\x80", NOW + 3600, '{"x":1}'),
    )
    assert data.decode().splitlines() == [
        '{"edgekv_export":1,"namespace":{"id":"' + "a" * 32 + '","title":"My tasks"},'
        f'"seq":123,"exported_at":{NOW}}}',
        '{"key":"a","value":"text value"}',
        '{"key":"b","value":"gICA","base64":true,'
        f'"expiration":{NOW + 3600},"metadata":{{"x":1}}}}',
        '{"edgekv_export_end":true,"count":2}',
    ]
    assert encode_entry(ExportEntry("é", "ü".encode())) == '{"key":"é","value":"ü"}\n'.encode()


def test_round_trip_is_exact() -> None:
    entries = [
        ExportEntry("a", b""),
        ExportEntry("bin", bytes(range(256)), NOW + 60),
        ExportEntry("meta", b"{}", None, '{"nested":{"list":[1,2.5,null,"\\u0000é"]}}'),
        ExportEntry("😀/x y", "text 😀".encode(), 2_000_000_000, '"plain"'),
    ]
    decoder, decoded = decode(export_bytes(*entries))
    assert decoded == entries
    assert decoder.header == HEADER
    assert decoder.complete and decoder.count == 4
    # Every line is a bulk-write item as rest-api.md defines it.
    for line in export_bytes(*entries).splitlines()[1:-1]:
        item = orjson.loads(line)
        assert set(item) <= {"key", "value", "base64", "expiration", "metadata"}


def test_lines_are_numbered_from_one() -> None:
    data = export_bytes(ExportEntry("a", b"1"), ExportEntry("b", b"2"))
    assert [n for n, _ in ExportDecoder(data.splitlines(), now=NOW)] == [2, 3]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", 'expected an object {"key": ..., "value": ...}'),
        (b'{"value": "v"}', '"key" must be a string'),
        (b'{"key": "k"}', "key 'k': \"value\" must be a string"),
        (b'{"key": "k", "value": 5}', "key 'k': \"value\" must be a string"),
        (b'{"key": "k", "value": "@@", "base64": true}', "key 'k': invalid base64 value"),
        (b'{"key": "k", "value": "v", "base64": "yes"}', '"base64" must be true or false'),
        (b'{"key": "", "value": "v"}', "Key name cannot be empty."),
        (b'{"key": "..", "value": "v"}', '".." is not allowed as a key name.'),
        (b'{"key": "' + b"k" * 513 + b'", "value": "v"}', "exceeds key length limit of 512"),
        (b'{"key": "k", "value": "v", "expiration": "soon"}', '"expiration" must be a number'),
        (b'{"key": "k", "value": "v", "expiration": 1.5}', "whole number of seconds"),
        (
            b'{"key": "k", "value": "v", "metadata": "' + b"m" * 1100 + b'"}',
            "Metadata length of 1102 exceeds limit of 1024.",
        ),
        (b'{"key": "k", "value": "v", "expiration_ttl": 30}', "must be at least 60"),
    ],
)
def test_a_bad_item_is_refused_with_its_line_and_reason(line: bytes, reason: str) -> None:
    data = encode_header(HEADER) + b'{"key": "ok", "value": "1"}\n' + line + b"\n"
    data += encode_trailer(2)
    error = refusal(data)
    assert error.line == 3
    assert reason in error.reason
    assert str(error).startswith("line 3: ")
    assert error.status == 400


def test_a_value_over_25_mib_is_refused() -> None:
    big = base64.b64encode(b"\0" * (25 * 1024 * 1024 + 1)).decode()
    line = orjson.dumps({"key": "big", "value": big, "base64": True})
    error = refusal(encode_header(HEADER) + line + b"\n" + encode_trailer(1))
    assert error.line == 2 and "exceeds" in error.reason


def test_header_is_required_and_checked() -> None:
    assert refusal(b"").reason == "empty file: no export header"
    assert "line 1 must be its header" in refusal(b'{"key": "a", "value": "b"}\n').reason
    assert "version 2 is not supported" in refusal(b'{"edgekv_export": 2}\n').reason
    assert '"seq" must be' in refusal(b'{"edgekv_export": 1, "namespace": {"id": "x"}}\n').reason


def test_trailer_count_and_completeness() -> None:
    body = encode_header(HEADER) + encode_entries([ExportEntry("a", b"1")])
    error = refusal(body + encode_trailer(2))
    assert (error.line, error.reason) == (3, "trailer says 2 entries, the file holds 1")
    error = refusal(body)
    assert error.line == 3 and "incomplete: no trailer after 1 entries" in error.reason
    decoder, entries = decode(body, partial=True)
    assert len(entries) == 1 and not decoder.complete
    error = refusal(body + encode_trailer(1) + b'{"key": "late", "value": "x"}\n')
    assert (error.line, error.reason) == (4, "line after the export's trailer")


def test_partial_drops_a_last_line_cut_in_the_middle() -> None:
    body = encode_header(HEADER) + encode_entries([ExportEntry("a", b"1"), ExportEntry("b", b"2")])
    cut = body[:-5]  # the second item, cut mid-line
    decoder, entries = decode(cut, partial=True)
    assert [e.key for e in entries] == ["a"] and decoder.cut_line == 3
    error = refusal(cut)  # without partial, the cut line is an error
    assert error.line == 3 and "not valid JSON" in error.reason


def test_blank_lines_and_crlf_are_tolerated() -> None:
    data = export_bytes(ExportEntry("a", b"1")).replace(b"\n", b"\r\n") + b"\n\n"
    _, entries = decode(data)
    assert entries == [ExportEntry("a", b"1")]
