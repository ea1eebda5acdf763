"""The multipart form of a value write: a `value` part and an optional JSON `metadata` part.

Parsed while the body streams in (python-multipart's push parser, fed chunk by chunk under the
body limit), so nothing beyond the limit is ever held. Only the two parts that matter are kept;
any other part is skipped without being stored.
"""

from __future__ import annotations

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from edgekv import wire
from edgekv.api.envelope import ApiError
from edgekv.api.http import Request
from edgekv.api.limits import MULTIPART_BODY_LIMIT, iter_body

__all__ = ["FormValue", "boundary_of", "read_value_form"]

_KEPT = (b"value", b"metadata")


class FormValue:
    """The parts of a value write: `value` bytes, `metadata` JSON text bytes (or None)."""

    __slots__ = ("metadata", "value")

    def __init__(self, value: bytes, metadata: bytes | None) -> None:
        self.value = value
        self.metadata = metadata


def _bad(text: str) -> ApiError:
    return ApiError(400, wire.BAD_REQUEST, text)


def boundary_of(content_type: bytes) -> bytes | None:
    """The boundary of a `multipart/form-data` content type, or None for another type."""
    kind, options = parse_options_header(content_type)
    if kind.lower() != b"multipart/form-data":
        return None
    boundary = options.get(b"boundary")
    if not boundary:
        raise _bad("multipart/form-data without a boundary")
    return boundary


class _Collector:
    """Callbacks of the push parser: remembers each part's headers and keeps the kept parts."""

    def __init__(self) -> None:
        self.parts: dict[bytes, list[bytes]] = {}
        self._field = b""
        self._value = b""
        self._headers: dict[bytes, bytes] = {}
        self._current: list[bytes] | None = None

    def on_part_begin(self) -> None:
        self._headers = {}
        self._current = None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._field.strip().lower()] = self._value.strip()
        self._field = self._value = b""

    def on_headers_finished(self) -> None:
        disposition = self._headers.get(b"content-disposition")
        if disposition is None:
            raise _bad("multipart part without a Content-Disposition header")
        _, options = parse_options_header(disposition)
        name = options.get(b"name")
        if name in _KEPT:
            if name in self.parts:
                raise _bad(f"multipart part {name.decode()!r} given twice")
            self._current = self.parts[name] = []

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._current is not None:
            self._current.append(data[start:end])

    def on_part_end(self) -> None:
        self._current = None


async def read_value_form(request: Request, boundary: bytes) -> FormValue:
    """Parse the streamed multipart body; a missing `value` part or a malformed body is 400."""
    collector = _Collector()
    try:
        parser = MultipartParser(
            boundary,
            {
                "on_part_begin": collector.on_part_begin,
                "on_header_field": collector.on_header_field,
                "on_header_value": collector.on_header_value,
                "on_header_end": collector.on_header_end,
                "on_headers_finished": collector.on_headers_finished,
                "on_part_data": collector.on_part_data,
                "on_part_end": collector.on_part_end,
            },
        )
        async for chunk in iter_body(request, MULTIPART_BODY_LIMIT):
            parser.write(chunk)
    except (MultipartParseError, ValueError) as exc:
        raise _bad(f"malformed multipart body: {exc}") from None
    if parser.state != MultipartState.END:
        raise _bad("malformed multipart body: it ends before its closing boundary")
    value = collector.parts.get(b"value")
    if value is None:
        raise _bad("multipart body without a 'value' part")
    metadata = collector.parts.get(b"metadata")
    return FormValue(b"".join(value), None if metadata is None else b"".join(metadata))
