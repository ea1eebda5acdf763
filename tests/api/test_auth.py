"""auth.py: tokens (hashed at rest), the headers, accounts, read-only and namespace scopes."""

from __future__ import annotations

import hashlib

import pytest

from edgekv.api.auth import create_token, hash_token, new_secret
from tests.api.conftest import Api, codes


async def test_token_is_stored_as_sha256_only(api: Api) -> None:
    secret, record = await create_token(api.store, api.account, name="x")
    assert record.token_hash == hashlib.sha256(secret.encode()).hexdigest() == hash_token(secret)
    found = await api.store.find_token(record.token_hash)
    assert found is not None and found.account_id == api.account
    assert secret not in repr(found)
    assert len(new_secret()) == 40 and new_secret() != new_secret()


async def test_no_token_is_401(api: Api) -> None:
    async with api.client() as anonymous:
        for url in (api.namespaces, api.url + "/client/v4/memberships"):
            r = await anonymous.get(url)
            assert r.status_code == 401 and codes(r) == [10000]
            assert r.json()["errors"][0]["message"] == "Authentication error"


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"X-Auth-Email": "a@b.c", "X-Auth-Key": "wrong"},
    ],
)
async def test_wrong_token_is_403(api: Api, headers: dict[str, str]) -> None:
    async with api.client(**headers) as client:
        r = await client.get(api.namespaces)
    assert r.status_code == 403 and codes(r) == [10000]


async def test_empty_bearer_is_401(api: Api) -> None:
    async with api.client(Authorization="Bearer") as client:
        r = await client.get(api.namespaces)
    assert r.status_code == 401 and codes(r) == [10000]


async def test_auth_key_headers(api: Api) -> None:
    async with api.client(**{"X-Auth-Email": "me@example.com", "X-Auth-Key": api.token}) as c:
        assert (await c.get(api.namespaces)).status_code == 200


async def test_new_token_works_at_once_after_a_refusal(api: Api) -> None:
    secret = new_secret()
    async with api.client(secret) as client:
        assert (await client.get(api.namespaces)).status_code == 403
        await create_token(api.store, api.account, secret=secret)
        assert (await client.get(api.namespaces)).status_code == 200


async def test_read_only_token(api: Api) -> None:
    ns = await api.create_namespace()
    await api.http.put(f"{api.namespaces}/{ns}/values/k", content=b"v")
    secret, _ = await create_token(api.store, api.account, read_only=True)
    base = f"{api.namespaces}/{ns}"
    async with api.client(secret) as ro:
        assert (await ro.get(f"{base}/values/k")).content == b"v"
        assert (await ro.get(f"{base}/keys")).status_code == 200
        assert (await ro.get(f"{base}/metadata/k")).status_code == 200
        assert (await ro.post(f"{base}/bulk/get", json={"keys": ["k"]})).status_code == 200
        assert (await ro.get(api.namespaces)).status_code == 200
        writes = [
            ro.put(f"{base}/values/k", content=b"changed"),
            ro.delete(f"{base}/values/k"),
            ro.put(f"{base}/bulk", json=[{"key": "k", "value": "x"}]),
            ro.post(f"{base}/bulk/delete", json=["k"]),
            ro.request("DELETE", f"{base}/bulk", json=["k"]),
            ro.post(api.namespaces, json={"title": "new"}),
            ro.put(base, json={"title": "renamed"}),
            ro.delete(base),
        ]
        for write in writes:
            r = await write
            assert r.status_code == 403 and codes(r) == [10037], r.text
    assert (await api.http.get(f"{base}/values/k")).content == b"v"


async def test_foreign_account_never_reaches_data(api: Api) -> None:
    mine = await api.create_namespace("mine")
    await api.http.put(f"{api.namespaces}/{mine}/values/secret", content=b"A's data")
    other = "b" * 32
    await api.store.ensure_account(other)
    theirs = (await api.store.create_namespace(other, "theirs")).id
    other_secret, _ = await create_token(api.store, other)
    other_ns = api.url + f"/client/v4/accounts/{other}/storage/kv/namespaces"
    async with api.client(other_secret) as b:
        # B's token on A's account: refused whatever the route
        for url in (
            api.namespaces,
            f"{api.namespaces}/{mine}",
            f"{api.namespaces}/{mine}/keys",
            f"{api.namespaces}/{mine}/values/secret",
            f"{api.namespaces}/{mine}/metadata/secret",
        ):
            r = await b.get(url)
            assert r.status_code == 403 and codes(r) == [10000], url
            assert b"A's data" not in r.content
        r = await b.put(f"{api.namespaces}/{mine}/values/secret", content=b"overwritten")
        assert r.status_code == 403
        # B's token on B's account naming A's namespace: not found
        for url in (
            f"{other_ns}/{mine}",
            f"{other_ns}/{mine}/keys",
            f"{other_ns}/{mine}/values/secret",
        ):
            r = await b.get(url)
            assert r.status_code == 404 and codes(r) == [10013], url
        r = await b.put(f"{other_ns}/{mine}/values/secret", content=b"overwritten")
        assert r.status_code == 404 and codes(r) == [10013]
        r = await b.post(f"{other_ns}/{mine}/bulk/get", json={"keys": ["secret"]})
        assert r.status_code == 404
        r = await b.delete(f"{other_ns}/{mine}")
        assert r.status_code == 404
        # and B's own namespace works
        assert (await b.get(f"{other_ns}/{theirs}")).status_code == 200
    # A's token on B's namespace through A's account: not found either
    r = await api.http.get(f"{api.namespaces}/{theirs}/keys")
    assert r.status_code == 404 and codes(r) == [10013]
    assert (await api.http.get(f"{api.namespaces}/{mine}/values/secret")).content == b"A's data"


async def test_unknown_account_is_403(api: Api) -> None:
    url = api.url + f"/client/v4/accounts/{'c' * 32}/storage/kv/namespaces"
    r = await api.http.get(url)
    assert r.status_code == 403 and codes(r) == [10000]


async def test_namespace_limited_token(api: Api) -> None:
    allowed = await api.create_namespace("allowed")
    hidden = await api.create_namespace("hidden")
    await api.http.put(f"{api.namespaces}/{hidden}/values/k", content=b"v")
    secret, _ = await create_token(api.store, api.account, namespaces=[allowed])
    async with api.client(secret) as limited:
        r = await limited.put(f"{api.namespaces}/{allowed}/values/k", content=b"mine")
        assert r.status_code == 200
        assert (await limited.get(f"{api.namespaces}/{allowed}/values/k")).content == b"mine"
        r = await limited.get(api.namespaces)
        assert [n["id"] for n in r.json()["result"]] == [allowed]
        for method, path in (
            ("GET", f"{hidden}/values/k"),
            ("GET", f"{hidden}/keys"),
            ("GET", hidden),
            ("PUT", f"{hidden}/values/k"),
            ("DELETE", hidden),
        ):
            r = await limited.request(method, f"{api.namespaces}/{path}", content=b"x")
            assert r.status_code == 403 and codes(r) == [10000], path
        r = await limited.post(api.namespaces, json={"title": "new"})
        assert r.status_code == 403 and codes(r) == [10037]
    assert (await api.http.get(f"{api.namespaces}/{hidden}/values/k")).content == b"v"


async def test_memberships_accounts_verify(api: Api) -> None:
    v4 = api.url + "/client/v4"
    r = await api.http.get(f"{v4}/memberships", params={"page": 1})
    result = r.json()["result"]
    assert len(result) == 1 and result[0]["account"]["id"] == api.account
    assert result[0]["account"]["name"]
    r = await api.http.get(f"{v4}/memberships", params={"page": 2})
    assert r.json()["result"] == []
    r = await api.http.get(f"{v4}/accounts")
    assert [a["id"] for a in r.json()["result"]] == [api.account]
    r = await api.http.get(f"{v4}/accounts/{api.account}")
    assert r.json()["result"]["id"] == api.account
    r = await api.http.get(f"{v4}/user/tokens/verify")
    assert r.json()["result"]["status"] == "active"
