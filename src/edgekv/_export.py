"""The export format: one namespace as NDJSON (versions-and-changes.md, "Export and import").

    {"edgekv_export": 1, "namespace": {"id": "…", "title": "…"}, "seq": 123, "exported_at": …}
    {"key": "a", "value": "text value"}
    {"key": "b", "value": "gICA", "base64": true, "expiration": 1800003600, "metadata": {"x": 1}}
    {"edgekv_export_end": true, "count": 2}

Line 1 is the header, then one bulk-write item per live key in UTF-8 byte order of keys, then
the trailer with the count; a file without the trailer is incomplete. This module is the only
place that knows the format: `encode_*` write it, `ExportDecoder` reads it back line by line,
checking every item as a bulk write would (key, value size, metadata) and reporting the first
bad line with its number and the reason (`ExportFormatError`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from edgekv import _rules as rules
from edgekv._exceptions import ExportFormatError, KVError

__all__ = [
    "FORMAT_VERSION",
    "MEDIA_TYPE",
    "ExportDecoder",
    "ExportEntry",
    "ExportHeader",
    "decode_item",
    "encode_entries",
    "encode_entry",
    "encode_header",
    "encode_trailer",
]

FORMAT_VERSION = 1
MEDIA_TYPE = "application/x-ndjson"
_NEWLINE = b"\n"


class ExportEntry(NamedTuple):
    """One live key of an export: `.key`, `.value` (bytes), `.expiration` (absolute UNIX
    seconds or None) and `.metadata` (parsed from the stored JSON text, `.metadata_json`).

    Engines build these straight from their rows (a NamedTuple is made at C speed)."""

    key: str
    value: bytes
    expiration: int | None = None
    metadata_json: str | None = None

    @property
    def metadata(self) -> Any:
        raw = self.metadata_json
        return None if raw is None else orjson.loads(raw)

    def to_dict(self) -> dict[str, Any]:
        """The bulk-write item of this entry (what its export line holds)."""
        value = self.value
        try:
            item: dict[str, Any] = {"key": self.key, "value": value.decode()}
        except UnicodeDecodeError:
            item = {"key": self.key, "value": base64.b64encode(value).decode(), "base64": True}
        if self.expiration is not None:
            item["expiration"] = self.expiration
        if self.metadata_json is not None:
            # Fragment: the stored JSON text goes out as it is, never re-serialised.
            item["metadata"] = orjson.Fragment(self.metadata_json)
        return item


@dataclass(frozen=True, slots=True)
class ExportHeader:
    """Line 1 of an export: which namespace, as of which sequence number, and when."""

    namespace_id: str
    title: str
    seq: int
    exported_at: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "edgekv_export": FORMAT_VERSION,
            "namespace": {"id": self.namespace_id, "title": self.title},
            "seq": self.seq,
            "exported_at": self.exported_at,
        }


def encode_header(header: ExportHeader) -> bytes:
    return orjson.dumps(header.to_dict()) + _NEWLINE


def encode_entry(entry: ExportEntry) -> bytes:
    return orjson.dumps(entry.to_dict()) + _NEWLINE


def encode_entries(entries: Sequence[ExportEntry]) -> bytes:
    """Many lines at once (a page of an export), each ending with a newline: the same bytes
    as `encode_entry` of each, built by hand (five times faster than a dict per line)."""
    dumps = orjson.dumps
    out: list[bytes] = []
    add = out.append
    for key, value, expiration, metadata in entries:
        try:
            line = b'{"key":' + dumps(key) + b',"value":' + dumps(value.decode())
        except UnicodeDecodeError:
            line = b'{"key":' + dumps(key) + b',"value":"' + base64.b64encode(value)
            line += b'","base64":true'
        if expiration is not None:
            line += b',"expiration":' + str(expiration).encode()
        if metadata is not None:
            line += b',"metadata":' + metadata.encode()  # stored JSON text, as it is
        add(line + b"}\n")
    return b"".join(out)


def encode_trailer(count: int) -> bytes:
    return orjson.dumps({"edgekv_export_end": True, "count": count}) + _NEWLINE


# -- decoding ------------------------------------------------------------------------------------
class _Bad(Exception):
    """A reason a line is refused (becomes ExportFormatError with the line number)."""


def _int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Bad(f'"{name}" must be a number')
    if isinstance(value, float) and not value.is_integer():
        raise _Bad(f'"{name}" must be a whole number of seconds')
    return int(value)


def decode_item(item: object, now: int) -> ExportEntry:
    """A bulk-write item (a parsed JSON object) as an entry, checked as a bulk write checks it,
    except that an absolute `expiration` is only required to be a number here (whether it is
    still in the future is the importer's business). `expiration_ttl` (wrangler's bulk files)
    is resolved against `now` with the usual rules. Raises `_Bad`."""
    if not isinstance(item, dict):
        raise _Bad('expected an object {"key": ..., "value": ...}')
    key = item.get("key")
    value = item.get("value")
    if not isinstance(key, str):
        raise _Bad('"key" must be a string')
    try:
        rules.check_key(key, "PUT")
    except KVError as exc:
        raise _Bad(f"key {key!r}: {exc}") from None
    if not isinstance(value, str):
        raise _Bad(f'key {key!r}: "value" must be a string')
    encoded = item.get("base64", False)
    if encoded is True:
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise _Bad(f"key {key!r}: invalid base64 value") from None
    elif encoded is False:
        try:
            data = value.encode()
        except UnicodeEncodeError:
            raise _Bad(f"key {key!r}: value is not valid Unicode") from None
    else:
        raise _Bad(f'key {key!r}: "base64" must be true or false')
    ttl = item.get("expiration_ttl")
    expiration = item.get("expiration")
    try:
        rules.check_value_size(len(data), "PUT")
        if ttl is not None:
            at: int | None = rules.resolve_expiration(None, _int(ttl, "expiration_ttl"), now)
        else:
            at = None if expiration is None else _int(expiration, "expiration")
        metadata = item.get("metadata")
        meta = None if metadata is None else rules.serialize_metadata(metadata)
    except KVError as exc:
        raise _Bad(f"key {key!r}: {exc}") from None
    except _Bad as exc:
        raise _Bad(f"key {key!r}: {exc}") from None
    return ExportEntry(key, data, at, meta)


def _parse(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise _Bad(f"not valid JSON ({exc})") from None


def _header(obj: object) -> ExportHeader:
    if not isinstance(obj, dict) or "edgekv_export" not in obj:
        raise _Bad('not an edgekv export: line 1 must be its header {"edgekv_export": 1, ...}')
    version = obj["edgekv_export"]
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise _Bad(f"export format version {version!r} is not supported (only 1)")
    namespace = obj.get("namespace")
    seq = obj.get("seq")
    if not isinstance(namespace, dict) or not isinstance(namespace.get("id"), str):
        raise _Bad('header: "namespace" must be {"id": ..., "title": ...}')
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise _Bad('header: "seq" must be a non-negative integer')
    exported_at = obj.get("exported_at", 0)
    if isinstance(exported_at, bool) or not isinstance(exported_at, int):
        raise _Bad('header: "exported_at" must be an integer')
    title = namespace.get("title", "")
    return ExportHeader(namespace["id"], title if isinstance(title, str) else "", seq, exported_at)


class ExportDecoder:
    """Reads an export from its lines (bytes, each with or without its newline) and yields
    `(line_number, ExportEntry)`. After the iteration: `.header`, `.count` (entries read) and
    `.complete` (the trailer was there and its count matched).

    Every problem raises `ExportFormatError` naming the line and the reason: a bad header, a
    malformed item, a line after the trailer, a trailer whose count differs, and (unless
    `partial`) a missing trailer. With `partial`, a missing trailer is allowed and an
    unterminated, unparsable last line (a file cut mid-line) is dropped (`.cut_line`)."""

    def __init__(self, lines: Iterable[bytes], *, now: int, partial: bool = False) -> None:
        self._lines = lines
        self._now = now
        self._partial = partial
        self.header: ExportHeader | None = None
        self.count = 0
        self.complete = False
        self.cut_line: int | None = None

    def __iter__(self) -> Iterator[tuple[int, ExportEntry]]:
        lineno = 0
        now = self._now
        pending: tuple[int, bytes] | None = None  # the previous line, parsed one step late
        line = self._line
        for raw in self._lines:
            lineno += 1
            if pending is not None:
                entry = line(pending[0], pending[1], now)
                if entry is not None:
                    yield pending[0], entry
            pending = (lineno, raw)
        if pending is not None:
            last_no, last = pending
            if (
                self._partial
                and self.header is not None
                and not self.complete
                and not last.endswith(_NEWLINE)
            ):
                try:
                    orjson.loads(last)
                except orjson.JSONDecodeError:
                    self.cut_line = last_no  # cut mid-line: what was cut is not there
                    return
            entry = line(last_no, last, now)
            if entry is not None:
                yield last_no, entry
        if self.header is None:
            raise ExportFormatError(max(lineno, 1), "empty file: no export header")
        if not self.complete and not self._partial:
            raise ExportFormatError(
                lineno + 1,
                f"the export is incomplete: no trailer after {self.count} entries",
            )

    def _line(self, lineno: int, raw: bytes, now: int) -> ExportEntry | None:
        """The entry of one line, or None for the header, the trailer and blank lines."""
        if not raw.strip():
            return None  # blank lines (a trailing newline, CRLF leftovers) carry nothing
        try:
            obj = _parse(raw)
            if self.header is None:
                self.header = _header(obj)
                return None
            if self.complete:
                raise _Bad("line after the export's trailer")
            if isinstance(obj, dict) and "edgekv_export_end" in obj:
                count = obj.get("count")
                if obj["edgekv_export_end"] is not True or not isinstance(count, int):
                    raise _Bad('trailer must be {"edgekv_export_end": true, "count": N}')
                if count != self.count:
                    raise _Bad(f"trailer says {count} entries, the file holds {self.count}")
                self.complete = True
                return None
            entry = decode_item(obj, now)
        except _Bad as exc:
            raise ExportFormatError(lineno, str(exc)) from None
        self.count += 1
        return entry
