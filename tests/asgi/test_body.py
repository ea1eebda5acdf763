"""asgi/body.py: the body channel shared by the REST server and the worker runtime."""

from __future__ import annotations

from typing import Any

import pytest

from edgekv._exceptions import ClientDisconnected
from edgekv.asgi.body import Body


class Big(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


def channel(*chunks: bytes, disconnect: bool = False) -> tuple[Body, list[dict[str, Any]]]:
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1 or disconnect}
        for i, c in enumerate(chunks)
    ]
    if disconnect:
        messages.append({"type": "http.disconnect"})
    queue = list(messages)

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    return Body(receive), queue


async def test_read_joins_chunks_and_marks_done() -> None:
    body, _ = channel(b"ab", b"", b"cd")
    assert not body.done
    assert await body.read(10, Big) == b"abcd"
    assert body.done and not body.unread([(b"content-length", b"4")])


async def test_declared_length_over_limit_is_refused_before_reading() -> None:
    body, queue = channel(b"x" * 5)
    with pytest.raises(Big) as info:
        await body.read(4, Big, declared=5)
    assert info.value.size == 5 and len(queue) == 1  # nothing was received
    assert body.unread([(b"content-length", b"5")])


async def test_over_limit_drains_within_allowance_then_refuses() -> None:
    body, queue = channel(b"x" * 3, b"x" * 3, b"x" * 3)
    with pytest.raises(Big) as info:
        await body.read(4, Big, drain=100)
    assert info.value.size == 9 and not queue and body.done  # read to its end: reusable
    body, queue = channel(b"x" * 3, b"x" * 3, b"x" * 3)
    with pytest.raises(Big):
        await body.read(4, Big)  # no allowance: refused at once
    assert len(queue) == 1 and body.unread([(b"transfer-encoding", b"chunked")])


async def test_disconnect_mid_body() -> None:
    body, _ = channel(b"ab", disconnect=True)
    with pytest.raises(ClientDisconnected):
        await body.read(10, Big)


@pytest.mark.parametrize(
    ("headers", "unread"),
    [
        ([], False),
        ([(b"content-length", b"0")], False),
        ([(b"content-length", b" ")], False),
        ([(b"content-length", b"3")], True),
        ([(b"transfer-encoding", b"chunked")], True),
    ],
)
def test_unread_until_read(headers: list[tuple[bytes, bytes]], unread: bool) -> None:
    body, _ = channel(b"abc")
    assert body.unread(headers) is unread
