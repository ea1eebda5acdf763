"""routes_namespaces.py: list (pages, order, direction), create, get, rename, delete."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Api, codes, message


async def test_create_get_rename_delete(api: Api) -> None:
    r = await api.http.post(api.namespaces, json={"title": "My tasks"})
    assert r.status_code == 200
    created = r.json()["result"]
    assert created["title"] == "My tasks"
    assert created["supports_url_encoding"] is True
    ns = created["id"]
    assert len(ns) == 32 and all(c in "0123456789abcdef" for c in ns)

    r = await api.http.get(f"{api.namespaces}/{ns}")
    assert r.json()["result"] == created

    r = await api.http.put(f"{api.namespaces}/{ns}", json={"title": "Renamed"})
    assert r.status_code == 200
    assert r.json()["result"]["title"] == "Renamed"

    # the key goes with its namespace
    await api.http.put(f"{api.namespaces}/{ns}/values/k", content=b"v")
    r = await api.http.delete(
        f"{api.namespaces}/{ns}", headers={"content-type": "application/json"}
    )
    assert r.status_code == 200 and r.json()["result"] is None
    r = await api.http.get(f"{api.namespaces}/{ns}")
    assert r.status_code == 404 and codes(r) == [10013]
    r = await api.http.get(f"{api.namespaces}/{ns}/values/k")
    assert r.status_code == 404 and codes(r) == [10013]
    r = await api.http.delete(f"{api.namespaces}/{ns}")
    assert r.status_code == 404 and codes(r) == [10013]


async def test_duplicate_title_is_10014(api: Api) -> None:
    await api.create_namespace("same")
    r = await api.http.post(api.namespaces, json={"title": "same"})
    assert r.status_code == 400 and codes(r) == [10014]
    message = r.json()["errors"][0]["message"]
    assert message == (
        "create namespace: 'A namespace with this account ID and title already exists'"
    )
    other = await api.create_namespace("other")
    r = await api.http.put(f"{api.namespaces}/{other}", json={"title": "same"})
    assert r.status_code == 400 and codes(r) == [10014]


@pytest.mark.parametrize(
    "body", [b"", b"{}", b'{"title": ""}', b'{"title": 5}', b"[]", b'{"title": "   "}']
)
async def test_missing_title_is_10019(api: Api, body: bytes) -> None:
    r = await api.http.post(api.namespaces, content=body)
    assert r.status_code == 400 and codes(r) == [10019]


async def test_title_too_long(api: Api) -> None:
    r = await api.http.post(api.namespaces, json={"title": "x" * 513})
    assert r.status_code == 400 and codes(r) == [10019]
    r = await api.http.post(api.namespaces, json={"title": "x" * 512})
    assert r.status_code == 200


async def test_invalid_json_is_400(api: Api) -> None:
    r = await api.http.post(api.namespaces, content=b'{"title": ')
    assert r.status_code == 400 and codes(r) == [10001]
    assert r.json()["errors"][0]["message"].startswith("create namespace: 'Invalid JSON")


async def test_rename_unknown_is_10013(api: Api) -> None:
    r = await api.http.put(f"{api.namespaces}/{'0' * 32}", json={"title": "x"})
    assert r.status_code == 404 and codes(r) == [10013]


async def test_list_pages_until_empty(api: Api) -> None:
    ids = [await api.create_namespace(f"ns-{i:02d}") for i in range(7)]
    seen: list[str] = []
    page = 1
    while True:
        r = await api.http.get(api.namespaces, params={"page": page, "per_page": 3})
        body = r.json()
        if not body["result"]:
            break
        info = body["result_info"]
        assert info["page"] == page and info["per_page"] == 3
        assert info["total_count"] == 7 and info["count"] == len(body["result"])
        seen += [n["id"] for n in body["result"]]
        page += 1
    assert page == 4  # 3 + 3 + 1, then [] past the end
    assert seen == ids  # default order: oldest first
    r = await api.http.get(api.namespaces, params={"page": 99})
    assert r.status_code == 200 and r.json()["result"] == []


async def test_list_order_and_direction(api: Api) -> None:
    for title in ("b", "c", "a"):
        await api.create_namespace(title)
    r = await api.http.get(api.namespaces, params={"order": "title"})
    assert [n["title"] for n in r.json()["result"]] == ["a", "b", "c"]
    r = await api.http.get(api.namespaces, params={"order": "title", "direction": "desc"})
    assert [n["title"] for n in r.json()["result"]] == ["c", "b", "a"]
    r = await api.http.get(api.namespaces, params={"order": "id"})
    result = r.json()["result"]
    assert [n["id"] for n in result] == sorted(n["id"] for n in result)
    r = await api.http.get(api.namespaces, params={"direction": "desc"})
    assert [n["title"] for n in r.json()["result"]] == ["a", "c", "b"]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"order": "name"}, 10043),
        ({"direction": "up"}, 10044),
        ({"page": "0"}, 10001),
        ({"page": "x"}, 10001),
        ({"per_page": "0"}, 10001),
        ({"per_page": "1001"}, 10001),
    ],
)
async def test_list_bad_parameters(api: Api, params: dict[str, str], code: int) -> None:
    r = await api.http.get(api.namespaces, params=params)
    assert r.status_code == 400 and codes(r) == [code]


async def test_too_many_namespaces_is_10018(api: Api) -> None:
    from edgekv.store.memory import MAX_NAMESPACES

    for i in range(MAX_NAMESPACES - 1):
        await api.store.create_namespace(api.account, f"bulk-{i}")
    await api.create_namespace("last one")
    r = await api.http.post(api.namespaces, json={"title": "one too many"})
    assert r.status_code == 400 and codes(r) == [10018]


NUL_IDS = ["ab%00cd", "%00", "0" * 31 + "%00"]


@pytest.mark.parametrize("bad", NUL_IDS)
@pytest.mark.parametrize(
    ("method", "tail", "body"),
    [
        ("GET", "", None),
        ("PUT", "", {"title": "x"}),
        ("DELETE", "", None),
        ("GET", "/keys", None),
        ("GET", "/values/k", None),
        ("PUT", "/values/k", b"v"),
        ("DELETE", "/values/k", None),
        ("GET", "/metadata/k", None),
        ("PUT", "/bulk", [{"key": "k", "value": "v"}]),
        ("POST", "/bulk/delete", ["k"]),
        ("POST", "/bulk/get", {"keys": ["k"]}),
    ],
)
async def test_a_namespace_id_with_nul_is_not_found(
    api: Api, bad: str, method: str, tail: str, body: Any
) -> None:
    """PostgreSQL text cannot hold NUL: such an id must answer like any unknown id (it was a
    500 `internal error` there), on every engine."""
    kwargs: dict[str, Any] = {}
    if isinstance(body, bytes):
        kwargs["content"] = body
    elif body is not None:
        kwargs["json"] = body
    r = await api.http.request(method, f"{api.namespaces}/{bad}{tail}", **kwargs)
    assert r.status_code == 404, r.text
    assert codes(r) == [10013]


async def test_an_account_id_with_nul_is_refused(api: Api) -> None:
    for url in (
        f"{api.url}/client/v4/accounts/ab%00cd/storage/kv/namespaces",
        f"{api.url}/client/v4/accounts/{api.account}%00/storage/kv/namespaces",
        f"{api.url}/client/v4/accounts/ab%00cd",
    ):
        r = await api.http.get(url)
        assert 400 <= r.status_code < 500, r.text
        r = await api.http.post(url, json={"title": "t"})
        assert 400 <= r.status_code < 500, r.text


@pytest.mark.parametrize("title", ["a\x00b", "\x00"])
async def test_a_title_with_nul_is_400_on_every_engine(api: Api, title: str) -> None:
    r = await api.http.post(api.namespaces, json={"title": title})
    assert r.status_code == 400, r.text
    assert message(r) == "create namespace: 'Namespace title must not contain NUL characters'"
    ns = await api.create_namespace("fine")
    r = await api.http.put(f"{api.namespaces}/{ns}", json={"title": title})
    assert r.status_code == 400, r.text
    r = await api.http.get(api.namespaces)
    assert [n["title"] for n in r.json()["result"]] == ["fine"]


async def test_nul_in_keys_metadata_and_prefixes_is_stored(api: Api, ns: str) -> None:
    """Keys are bytes and metadata is JSON text (NUL escaped): both hold a NUL everywhere."""
    items = [{"key": "k\x00", "value": "v", "metadata": {"m": "\x00"}}]
    r = await api.http.put(f"{api.namespaces}/{ns}/bulk", json=items)
    assert r.status_code == 200, r.text
    r = await api.http.get(f"{api.namespaces}/{ns}/keys", params={"prefix": "k\x00"})
    assert r.json()["result"] == [{"name": "k\x00", "metadata": {"m": "\x00"}}]
    r = await api.http.get(f"{api.namespaces}/{ns}/values/k%00")
    assert r.content == b"v"
