"""routes_bulk.py: bulk write, both bulk delete routes, bulk get (and its edgekv extensions)."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from tests.api.conftest import Api, codes, message

NOW = 1_700_000_000


async def keys_of(api: Api, ns: str) -> list[str]:
    r = await api.http.get(f"{api.namespaces}/{ns}/keys")
    return [k["name"] for k in r.json()["result"]]


async def test_bulk_write_10000_pairs(api: Api, ns: str) -> None:
    items = [{"key": f"k{i:05d}", "value": f"v{i}"} for i in range(10_000)]
    r = await api.http.put(f"{api.namespaces}/{ns}/bulk", json=items)
    assert r.status_code == 200, r.text
    assert r.json()["result"] == {"successful_key_count": 10_000, "unsuccessful_keys": []}
    assert (await api.http.get(f"{api.namespaces}/{ns}/values/k09999")).content == b"v9999"
    r = await api.http.get(f"{api.namespaces}/{ns}/keys", params={"limit": 1000})
    assert r.json()["result_info"]["cursor"] != ""


async def test_bulk_write_options(api: Api, ns: str) -> None:
    items: list[dict[str, Any]] = [
        {"key": "b64", "value": base64.b64encode(b"\x00\xff raw").decode(), "base64": True},
        {"key": "plain", "value": "aGk=", "base64": False},
        {"key": "ttl", "value": "t", "expiration_ttl": 120, "metadata": {"m": 1}},
        {"key": "abs", "value": "a", "expiration": NOW + 600},
        {"key": "dup", "value": "first"},
        {"key": "dup", "value": "second"},  # a later duplicate wins
    ]
    r = await api.http.put(f"{api.namespaces}/{ns}/bulk", json=items)
    assert r.status_code == 200, r.text
    get = api.http.get
    assert (await get(f"{api.namespaces}/{ns}/values/b64")).content == b"\x00\xff raw"
    assert (await get(f"{api.namespaces}/{ns}/values/plain")).content == b"aGk="
    assert (await get(f"{api.namespaces}/{ns}/values/dup")).content == b"second"
    r = await get(f"{api.namespaces}/{ns}/keys")
    listed = {k["name"]: k for k in r.json()["result"]}
    assert listed["ttl"] == {"name": "ttl", "expiration": NOW + 120, "metadata": {"m": 1}}
    assert listed["abs"] == {"name": "abs", "expiration": NOW + 600}


@pytest.mark.parametrize(
    ("item", "status", "code"),
    [
        ({"key": "", "value": "v"}, 400, 10042),
        ({"key": "k" * 513, "value": "v"}, 414, 10030),
        ({"value": "v"}, 400, 10042),
        ({"key": "k", "value": 5}, 400, 10001),
        ({"key": "k"}, 400, 10001),
        ({"key": "k", "value": "***", "base64": True}, 400, 10001),
        ({"key": "k", "value": "v", "expiration_ttl": 10}, 400, 10034),
        ({"key": "k", "value": "v", "expiration": 1}, 400, 10033),
        ({"key": "k", "value": "v", "metadata": {"x": "y" * 1100}}, 413, 10024),
        ({"key": "k", "value": "v", "expiration_ttl": 1e30}, 400, 10034),
        ({"key": "k", "value": "v", "expiration_ttl": 10**30}, 400, 10034),
        ({"key": "k", "value": "v", "expiration": 9223372036854775808}, 400, 10033),
        ({"key": "k", "value": "v", "expiration": 1e300}, 400, 10033),
    ],
)
async def test_bulk_write_is_all_or_nothing(
    api: Api, ns: str, item: dict[str, Any], status: int, code: int
) -> None:
    items = [{"key": "good", "value": "v"}, item]
    r = await api.http.put(f"{api.namespaces}/{ns}/bulk", json=items)
    assert r.status_code == status and codes(r) == [code], r.text
    assert message(r).startswith("bulk put: '")
    assert await keys_of(api, ns) == []


async def test_bulk_write_too_many_pairs(api: Api, ns: str) -> None:
    items = [{"key": f"k{i}", "value": "v"} for i in range(10_001)]
    r = await api.http.put(f"{api.namespaces}/{ns}/bulk", json=items)
    assert r.status_code == 400 and codes(r) == [10001]
    assert "maximum of 10000" in message(r)
    assert await keys_of(api, ns) == []


@pytest.mark.parametrize("body", [b"{}", b'"x"', b"[1, 2]", b'[["k", "v"]]', b"[{", b""])
async def test_bulk_write_bad_bodies(api: Api, ns: str, body: bytes) -> None:
    r = await api.http.put(
        f"{api.namespaces}/{ns}/bulk", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and codes(r) == [10001], r.text


@pytest.mark.parametrize(("method", "path"), [("POST", "bulk/delete"), ("DELETE", "bulk")])
async def test_bulk_delete_both_routes(api: Api, ns: str, method: str, path: str) -> None:
    await api.http.put(
        f"{api.namespaces}/{ns}/bulk", json=[{"key": f"k{i}", "value": "v"} for i in range(5)]
    )
    r = await api.http.request(
        method, f"{api.namespaces}/{ns}/{path}", json=["k0", "k2", "missing"]
    )
    assert r.status_code == 200, r.text
    assert r.json()["result"] == {"successful_key_count": 3, "unsuccessful_keys": []}
    assert await keys_of(api, ns) == ["k1", "k3", "k4"]


async def test_bulk_delete_errors(api: Api, ns: str) -> None:
    url = f"{api.namespaces}/{ns}/bulk/delete"
    r = await api.http.post(url, json=[f"k{i}" for i in range(10_001)])
    assert r.status_code == 400 and codes(r) == [10001]
    r = await api.http.post(url, json={"keys": ["a"]})
    assert r.status_code == 400 and codes(r) == [10001]
    r = await api.http.post(url, json=["ok", ""])
    assert r.status_code == 400 and codes(r) == [10042]
    r = await api.http.post(url, json=["ok", 5])
    assert r.status_code == 400 and codes(r) == [10042]


@pytest.fixture
async def filled(api: Api, ns: str) -> str:
    items: list[dict[str, Any]] = [
        {"key": "text", "value": "hello"},
        {"key": "json", "value": '{"a": [1, 2]}', "metadata": {"m": True}},
        {"key": "zero", "value": "0", "metadata": 0, "expiration_ttl": 600},
        {"key": "bin", "value": base64.b64encode(b"\xff\x00").decode(), "base64": True},
    ]
    r = await api.http.put(f"{api.namespaces}/{ns}/bulk", json=items)
    assert r.status_code == 200
    return ns


async def bulk_get(api: Api, ns: str, body: dict[str, Any]) -> httpx.Response:
    return await api.http.post(f"{api.namespaces}/{ns}/bulk/get", json=body)


async def test_bulk_get_text_and_json(api: Api, filled: str) -> None:
    r = await bulk_get(api, filled, {"keys": ["text", "missing", "text", "json"]})
    assert r.status_code == 200
    assert r.json()["result"] == {
        "values": {"text": "hello", "missing": None, "json": '{"a": [1, 2]}'}
    }
    assert list(r.json()["result"]["values"]) == ["text", "missing", "json"]
    r = await bulk_get(api, filled, {"keys": ["json", "zero", "nope"], "type": "json"})
    assert r.json()["result"] == {"values": {"json": {"a": [1, 2]}, "zero": 0, "nope": None}}


async def test_bulk_get_with_metadata(api: Api, filled: str) -> None:
    body = {"keys": ["text", "json", "zero", "missing"], "withMetadata": True}
    r = await bulk_get(api, filled, body)
    values = r.json()["result"]["values"]
    # Each found entry carries its version (versions-and-changes.md), the ETag of a value read.
    for key in ("text", "json", "zero"):
        etag = (await api.http.get(f"{api.namespaces}/{filled}/values/{key}")).headers["etag"]
        assert etag == f'"{values[key].pop("version")}"'
    assert values == {
        "text": {"value": "hello", "metadata": None},
        "json": {"value": '{"a": [1, 2]}', "metadata": {"m": True}},
        "zero": {"value": "0", "metadata": 0, "expiration": NOW + 600},
        "missing": None,
    }


async def test_bulk_get_base64_extension(api: Api, filled: str) -> None:
    r = await bulk_get(api, filled, {"keys": ["bin", "text", "missing"], "encoding": "base64"})
    values = r.json()["result"]["values"]
    assert base64.b64decode(values["bin"]) == b"\xff\x00"
    assert base64.b64decode(values["text"]) == b"hello"
    assert values["missing"] is None
    body = {"keys": ["bin", "zero"], "encoding": "base64", "withMetadata": True}
    values = (await bulk_get(api, filled, body)).json()["result"]["values"]
    assert isinstance(values["bin"].pop("version"), str)
    assert isinstance(values["zero"].pop("version"), str)
    assert values["bin"] == {"value": base64.b64encode(b"\xff\x00").decode(), "metadata": None}
    assert values["zero"] == {"value": "MA==", "metadata": 0, "expiration": NOW + 600}


@pytest.mark.parametrize(
    ("body", "status", "code", "text"),
    [
        ({"keys": ["k"], "type": "arrayBuffer"}, 400, 10001, '"arrayBuffer" is not a valid type'),
        ({"keys": [f"k{i}" for i in range(101)]}, 400, 10001, "maximum of 100 keys"),
        ({"keys": []}, 400, 10001, "minimum of 1 key"),
        ({"keys": ["ok", ""]}, 400, 10042, "Key names must not be empty"),
        ({"keys": [".."]}, 400, 10042, 'Illegal key name ".."'),
        ({"keys": ["k" * 513]}, 414, 10030, "UTF-8 encoded length of 513"),
        ({"keys": ["text"], "type": "json"}, 400, 10001, "non-json value"),
        ({"keys": "text"}, 400, 10001, "keys must be an array"),
        ({"keys": ["text"], "withMetadata": "yes"}, 400, 10001, "withMetadata"),
        ({"keys": ["text"], "encoding": "hex"}, 400, 10001, "encoding"),
        ({"keys": ["text"], "encoding": "base64", "type": "json"}, 400, 10001, "base64"),
    ],
)
async def test_bulk_get_errors(
    api: Api, filled: str, body: dict[str, Any], status: int, code: int, text: str
) -> None:
    r = await bulk_get(api, filled, body)
    assert r.status_code == status and codes(r) == [code], r.text
    assert text in message(r)


async def test_bulk_get_total_size_limit(api: Api, ns: str) -> None:
    big = "x" * (9 * 1024 * 1024)
    for i in range(3):
        r = await api.http.put(f"{api.namespaces}/{ns}/values/big{i}", content=big.encode())
        assert r.status_code == 200
    r = await bulk_get(api, ns, {"keys": ["big0", "big1"]})
    assert r.status_code == 200
    r = await bulk_get(api, ns, {"keys": ["big0", "big1", "big2"]})
    assert r.status_code == 413 and codes(r) == [10024]
    assert message(r) == "bulk get: 'Total size of request exceeds the limit of 25MB'"
