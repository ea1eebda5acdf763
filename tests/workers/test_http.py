"""`Request`, `Response` and `Headers` as a worker sees them (plain objects: in process)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from edgekv.asgi.body import Body
from edgekv.workers import Headers, Request, Response
from edgekv.workers.http import MAX_BODY_BYTES, BodyTooLarge, ClientDisconnected, from_asgi


def test_headers_are_case_insensitive_and_join_repeats() -> None:
    headers = Headers([("Accept", "a"), ("accept", "b"), ("X-One", "1")])
    assert headers["ACCEPT"] == "a, b"
    assert headers.get_all("accept") == ["a", "b"]
    assert headers.get("missing") is None
    assert "x-one" in headers and "X-ONE" in headers
    assert list(headers) == ["accept", "x-one"]
    assert len(headers) == 2
    headers["accept"] = "c"
    assert headers.get_all("Accept") == ["c"]
    headers.append("accept", "d")
    assert headers["accept"] == "c, d"
    del headers["accept"]
    assert "accept" not in headers
    with pytest.raises(KeyError):
        del headers["accept"]


@pytest.mark.parametrize(
    ("name", "value"), [("x", "a\r\nset-cookie: evil"), ("bad name:", "v"), ("", "v")]
)
def test_headers_refuse_injection(name: str, value: str) -> None:
    with pytest.raises(ValueError):
        Headers({name: value})


def test_response_bodies_and_default_content_types() -> None:
    text = Response("héllo")
    assert text.body == "héllo".encode()
    assert text.status == 200
    assert text.headers["content-type"] == "text/plain;charset=UTF-8"
    assert text.text() == "héllo"
    assert Response("a\ud800b").body == "a\ufffdb".encode()  # a lone surrogate, as TextEncoder
    raw = Response(b"\x00\xff", status=201)
    assert raw.body == b"\x00\xff" and "content-type" not in raw.headers
    assert Response(bytearray(b"ab")).body == b"ab"
    assert Response(memoryview(b"ab")).body == b"ab"
    empty = Response(None, status=204)
    assert empty.body == b"" and "content-type" not in empty.headers
    typed = Response("<p>", headers={"Content-Type": "text/html"})
    assert typed.headers.get_all("content-type") == ["text/html"]


def test_response_json_and_redirect() -> None:
    response = Response.json({"a": [1, "é"]}, status=202)
    assert response.status == 202
    assert response.body == '{"a":[1,"é"]}'.encode()
    assert response.headers["content-type"] == "application/json"
    redirect = Response.redirect("https://example.com/", 301)
    assert (redirect.status, redirect.headers["location"]) == (301, "https://example.com/")
    with pytest.raises(ValueError):
        Response.redirect("/x", 200)


@pytest.mark.parametrize("status", [100, 199, 600, True, "200"])
def test_response_refuses_bad_statuses(status: Any) -> None:
    with pytest.raises(ValueError):
        Response("x", status=status)


@pytest.mark.parametrize("body", [123, {"a": 1}, ["x"], 1.5])
def test_response_refuses_other_body_types(body: Any) -> None:
    with pytest.raises(TypeError, match="Response body must be"):
        Response(body)


async def test_response_accepts_an_async_iterable_body() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"a"

    response = Response(chunks())
    assert not isinstance(response.body, bytes)
    with pytest.raises(TypeError):
        response.text()


async def test_a_hand_made_request() -> None:
    request = Request(
        "http://example.com/a%20b?x=1&x=2&y=%C3%A9",
        method="post",
        headers={"X-Test": "v"},
        body="héllo",
    )
    assert request.method == "POST"
    assert request.url == "http://example.com/a%20b?x=1&x=2&y=%C3%A9"
    assert request.path == "/a b"
    assert list(request.query.items()) == [("x", "1"), ("y", "é")]
    assert request.headers["x-test"] == "v"
    assert await request.bytes() == "héllo".encode()
    assert await request.text() == "héllo"
    with pytest.raises(ValueError):
        await request.json()
    assert await Request("http://h/", body='{"a": 1}').json() == {"a": 1}
    with pytest.raises(ValueError, match="absolute URL"):
        Request("/relative")


def _asgi(
    messages: list[dict[str, Any]], headers: list[tuple[bytes, bytes]] | None = None
) -> Request:
    scope = {
        "type": "http",
        "method": "PUT",
        "scheme": "http",
        "path": "/k",
        "raw_path": b"/k",
        "query_string": b"",
        "headers": headers or [(b"host", b"h:1")],
        "server": ("127.0.0.1", 8787),
    }
    queue = list(messages)

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    return from_asgi(scope, Body(receive))


async def test_body_is_read_from_the_asgi_stream_once() -> None:
    request = _asgi(
        [
            {"type": "http.request", "body": b"ab", "more_body": True},
            {"type": "http.request", "body": b"cd", "more_body": False},
        ]
    )
    assert request.url == "http://h:1/k"
    assert await request.bytes() == b"abcd"
    assert await request.text() == "abcd"  # cached: the stream is not read twice


async def test_a_declared_oversized_body_is_refused_before_reading() -> None:
    request = _asgi([], headers=[(b"content-length", str(MAX_BODY_BYTES + 1).encode())])
    with pytest.raises(BodyTooLarge):
        await request.bytes()


async def test_a_disconnect_while_reading_the_body() -> None:
    request = _asgi([{"type": "http.disconnect"}])
    with pytest.raises(ClientDisconnected):
        await request.bytes()
