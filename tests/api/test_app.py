"""app.py: routing on the raw path, the envelope, unknown routes, the catch-all."""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgekv._types import Entry, Store
from edgekv.api import EdgeKVApp, create_app
from edgekv.api.app import decode_key
from edgekv.api.auth import create_token
from edgekv.api.envelope import ApiError
from edgekv.store.memory import MemoryStore
from tests.api.conftest import Api, serving
from tests.conftest import ENGINES, make_store
from tests.servers import NS_PATH


def errors(r: httpx.Response) -> list[int]:
    body = r.json()
    assert body["success"] is False
    assert body["result"] is None
    return [e["code"] for e in body["errors"]]


def test_decode_key_exactly_once() -> None:
    assert decode_key(b"%2541") == "%41"
    assert decode_key(b"a+b") == "a+b"  # a path is not a form: + stays +
    with pytest.raises(ApiError) as info:
        decode_key(b"%ff")
    assert info.value.code == 10042


async def test_unknown_route_is_7003(api: Api) -> None:
    for path in ("/client/v4/zones", "/nothing", f"{api.namespaces}/x/y/z"):
        url = path if path.startswith("http") else api.url + path
        r = await api.http.get(url)
        assert r.status_code == 404
        assert errors(r) == [7003]


async def test_wrong_method_is_405(api: Api) -> None:
    ns = await api.create_namespace()
    r = await api.http.post(f"{api.namespaces}/{ns}/values/k", content=b"x")
    assert r.status_code == 405
    assert errors(r) == [7001]
    assert r.headers["allow"] == "DELETE, GET, PUT"


async def test_healthz_needs_no_token(api: Api) -> None:
    async with api.client() as anonymous:
        r = await anonymous.get(api.url + "/healthz")
    assert r.status_code == 200
    assert r.json()["success"] is True


async def test_envelope_shape(api: Api) -> None:
    r = await api.http.get(api.namespaces)
    body = r.json()
    assert set(body) == {"success", "errors", "messages", "result", "result_info"}
    assert body["success"] is True and body["errors"] == [] and body["messages"] == []
    assert r.headers["content-type"] == "application/json"


# -- the catch-all ---------------------------------------------------------------------------
async def started_app(store: Store) -> tuple[EdgeKVApp, str, str, str]:
    """`create_app(store)`, started: the app, its account, an admin token, a namespace `t`."""
    app = create_app(store)
    await app.startup()
    account = app.client.account_id
    assert account is not None
    token, _ = await create_token(store, account)
    return app, account, token, (await store.create_namespace(account, "t")).id


class BuggyStore(MemoryStore):
    """A store with a bug in one method: what a genuine programming error looks like."""

    async def get(
        self, namespace_id: str, key: str, *, now: int, cache_ttl: int | None = None
    ) -> Entry | None:
        raise ZeroDivisionError("a bug")


async def test_unexpected_error_is_a_500_envelope(caplog: pytest.LogCaptureFixture) -> None:
    app, account, token, ns = await started_app(BuggyStore())
    async with serving(app) as url, httpx.AsyncClient() as http:
        r = await http.get(
            f"{url}/client/v4/accounts/{account}/storage/kv/namespaces/{ns}/values/k",
            headers={"Authorization": f"Bearer {token}"},
        )
    assert r.status_code == 500
    assert errors(r) == [10002]
    assert r.json()["errors"][0]["message"] == "get: 'internal error'"
    assert "ZeroDivisionError" not in r.text and "Traceback" not in r.text
    assert any("ZeroDivisionError" in (rec.exc_text or "") for rec in caplog.records)


# -- no input makes a 500 ----------------------------------------------------------------------
SEGMENTS = st.sampled_from(
    [
        "accounts",
        "storage",
        "kv",
        "namespaces",
        "values",
        "metadata",
        "keys",
        "bulk",
        "get",
        "delete",
        "client",
        "v4",
        "%2F",
        "%ff",
        "%",
        "..",
        ".",
        "",
        "x" * 600,
        "ACCOUNT",
        "NS",
        "%00",
        "ab%00cd",
        "NS%00",
    ]
)


async def _call(
    app: EdgeKVApp,
    method: str,
    path: bytes,
    query: bytes,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    sent: list[Any] = []
    chunks = [body[: len(body) // 2], body[len(body) // 2 :]]

    async def receive() -> dict[str, Any]:
        chunk = chunks.pop(0) if chunks else b""
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path.decode("latin-1"),
        "raw_path": path,
        "query_string": query,
        "headers": headers,
        "client": ("127.0.0.1", 1),
    }
    await app(scope, receive, send)
    start, end = sent[0], sent[1]
    return int(start["status"]), bytes(end["body"]), list(start["headers"])


REQUESTS = {
    "method": st.sampled_from(["GET", "PUT", "POST", "DELETE", "PATCH", "HEAD"]),
    "segments": st.lists(SEGMENTS, max_size=9),
    "key": st.text(max_size=20),
    "query": st.binary(max_size=40),
    "content_type": st.sampled_from(
        [
            b"",
            b"application/json",
            b"multipart/form-data",
            b"multipart/form-data; boundary=b",
            b"text/plain",
        ]
    ),
    "body": st.one_of(
        st.binary(max_size=200),
        st.sampled_from(
            [
                b"{}",
                b"[]",
                b'{"keys": []}',
                b'[{"key": "k"}]',
                b'{"title": 1}',
                b'{"title": "nul\\u0000title"}',
                b'[{"key": "k\\u0000", "value": "v", "metadata": "\\u0000"}]',
                b"--b\r\n\r\n--b--",
                b'{"keys": ["a"], "type": "json"}',
            ]
        ),
    ),
    "auth": st.sampled_from(["good", "none", "bad"]),
}


@pytest.mark.parametrize("engine", ENGINES)
def test_no_request_makes_a_500(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Random requests against the app over every engine (PostgreSQL refuses some text SQLite
    takes, such as a NUL character): never a 5xx, always an envelope."""
    with asyncio.Runner() as runner:
        store = runner.run(make_store(engine, tmp_path, request))
        try:
            app, account, token, ns = runner.run(started_app(store))
            runner.run(store.put(ns, "a", Entry(b"not json")))

            @settings(
                max_examples=200 if engine == "memory" else 100,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                derandomize=True,
            )
            @given(**REQUESTS)
            def one_request(
                method: str,
                segments: list[str],
                key: str,
                query: bytes,
                content_type: bytes,
                body: bytes,
                auth: str,
            ) -> None:
                path = "/" + "/".join(
                    s.replace("ACCOUNT", account).replace("NS", ns) for s in segments
                )
                if segments[:1] == ["ACCOUNT"] or not segments:
                    path = f"{NS_PATH.format(account=account)}/{ns}/values/" + quote(key)
                headers = [(b"content-type", content_type)] if content_type else []
                if auth == "good":
                    headers.append((b"authorization", f"Bearer {token}".encode()))
                elif auth == "bad":
                    headers.append((b"authorization", b"Bearer nope"))
                status, payload, _ = runner.run(
                    _call(app, method, path.encode(), query, headers, body)
                )
                assert status < 500, (status, payload)
                if not (status == 200 and method == "GET" and b"/values/" in path.encode()):
                    envelope = json.loads(payload)
                    assert set(envelope) >= {"success", "errors", "messages", "result"}
                    if status >= 400:
                        assert envelope["errors"] and isinstance(envelope["errors"][0]["code"], int)

            one_request()
            runner.run(app.shutdown())
        finally:
            runner.run(store.aclose())
