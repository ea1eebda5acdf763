"""multipart.py: the streamed multipart parser of value writes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from edgekv.api.envelope import ApiError
from edgekv.api.multipart import boundary_of
from tests.api.conftest import Api

BOUNDARY = "----edgekvBoundary7MA4YWxkTrZu0gW"


def form(value: bytes, metadata: bytes | None = None, extra: bool = False) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="value"; filename="v"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + value
        + b"\r\n"
    ]
    if extra:
        parts.append(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="ignored"\r\n\r\n'.encode()
            + b"x" * 5000
            + b"\r\n"
        )
    if metadata is not None:
        parts.append(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="metadata"\r\n'
            "Content-Type: application/json\r\n\r\n".encode()
            + metadata
            + b"\r\n"
        )
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def test_boundary_of() -> None:
    assert boundary_of(b"multipart/form-data; boundary=abc") == b"abc"
    assert boundary_of(b'Multipart/Form-Data; boundary="a b"') == b"a b"
    assert boundary_of(b"application/json") is None
    with pytest.raises(ApiError):
        boundary_of(b"multipart/form-data")


@pytest.mark.parametrize("chunk_size", [1, 7, 4096])
async def test_parts_split_anywhere(api: Api, chunk_size: int) -> None:
    """The body arrives in pieces cut at every possible place (chunked transfer)."""
    ns = await api.create_namespace()
    value = bytes(range(256)) * 20 + b"\r\n--" + BOUNDARY.encode()[:-1]  # boundary-like bytes
    body = form(value, b'{"a": 1}', extra=True)

    async def pieces() -> AsyncIterator[bytes]:
        for i in range(0, len(body), chunk_size):
            yield body[i : i + chunk_size]

    url = f"{api.namespaces}/{ns}/values/k"
    headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    r = await api.http.put(url, content=pieces(), headers=headers)
    assert r.status_code == 200, r.text
    assert (await api.http.get(url)).content == value
    assert (await api.http.get(f"{api.namespaces}/{ns}/metadata/k")).json()["result"] == {"a": 1}


async def test_duplicate_part_is_refused(api: Api) -> None:
    ns = await api.create_namespace()
    body = form(b"one")[: -len(f"--{BOUNDARY}--\r\n")] + form(b"two")
    r = await api.http.put(
        f"{api.namespaces}/{ns}/values/k",
        content=body,
        headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    assert r.status_code == 400 and "twice" in r.json()["errors"][0]["message"]
