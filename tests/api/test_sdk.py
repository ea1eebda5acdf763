"""The official `cloudflare` Python SDK, unmodified, against `edgekv serve` in a subprocess:
every KV call it has, pagination across pages, and the errors it raises."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cloudflare import (
    AsyncCloudflare,
    AuthenticationError,
    BadRequestError,
    Cloudflare,
    NotFoundError,
    PermissionDeniedError,
)

from tests.api.conftest import Central


@pytest.fixture
def cf(shared_central: Central) -> Iterator[Cloudflare]:
    with Cloudflare(
        base_url=shared_central.api, api_token=shared_central.token, max_retries=0
    ) as client:
        yield client


@pytest.fixture
def account(shared_central: Central) -> str:
    return shared_central.account


@pytest.fixture
def ns(cf: Cloudflare, account: str, request: pytest.FixtureRequest) -> Iterator[str]:
    created = cf.kv.namespaces.create(account_id=account, title=f"sdk {request.node.name}")
    assert created is not None
    yield created.id
    cf.kv.namespaces.delete(created.id, account_id=account)


def test_namespace_lifecycle(cf: Cloudflare, account: str) -> None:
    created = cf.kv.namespaces.create(account_id=account, title="My tasks")
    assert created is not None and created.title == "My tasks"
    assert created.supports_url_encoding is True
    got = cf.kv.namespaces.get(created.id, account_id=account)
    assert got is not None and got.id == created.id
    renamed = cf.kv.namespaces.update(created.id, account_id=account, title="Renamed")
    assert renamed.title == "Renamed"
    assert created.id in [n.id for n in cf.kv.namespaces.list(account_id=account)]
    cf.kv.namespaces.delete(created.id, account_id=account)
    with pytest.raises(NotFoundError) as info:
        cf.kv.namespaces.get(created.id, account_id=account)
    assert info.value.status_code == 404
    assert "10013" in str(info.value)


def test_namespace_auto_pagination(cf: Cloudflare, account: str) -> None:
    titles = [f"page-test-{i:02d}" for i in range(23)]
    ids = [cf.kv.namespaces.create(account_id=account, title=t).id for t in titles]  # type: ignore[union-attr]
    try:
        listed = list(cf.kv.namespaces.list(account_id=account, per_page=5))
        assert [n.id for n in listed if n.title.startswith("page-test-")] == ids
        ordered = cf.kv.namespaces.list(
            account_id=account, per_page=4, order="title", direction="desc"
        )
        mine = [n.title for n in ordered if n.title.startswith("page-test-")]
        assert mine == sorted(titles, reverse=True)
    finally:
        for i in ids:
            cf.kv.namespaces.delete(i, account_id=account)


def test_duplicate_title_is_bad_request_10014(cf: Cloudflare, account: str, ns: str) -> None:
    title = cf.kv.namespaces.get(ns, account_id=account).title  # type: ignore[union-attr]
    with pytest.raises(BadRequestError) as info:
        cf.kv.namespaces.create(account_id=account, title=title)
    assert info.value.status_code == 400
    body = info.value.body
    assert isinstance(body, dict) and body["errors"][0]["code"] == 10014


def test_values_read_write_delete(cf: Cloudflare, account: str, ns: str) -> None:
    values = cf.kv.namespaces.values
    for key in ("to-do:123", "dir/a b:c!", "100%", "é🙂"):
        values.update(key, account_id=account, namespace_id=ns, value=key.encode())
        got = values.get(key, account_id=account, namespace_id=ns)
        assert got.read() == key.encode()
    values.update(
        "meta",
        account_id=account,
        namespace_id=ns,
        value=b"buy milk",
        metadata='{"done": false}',
        expiration_ttl=600,
    )
    raw = values.with_raw_response.get("meta", account_id=account, namespace_id=ns)
    expiration = int(raw.headers["expiration"])
    assert abs(expiration - (time.time() + 600)) < 5
    metadata = cf.kv.namespaces.metadata.get("meta", account_id=account, namespace_id=ns)
    assert metadata == {"done": False}
    # a dict works too (the SDK sends it as JSON)
    values.update("meta2", account_id=account, namespace_id=ns, value=b"x", metadata={"n": 1})
    assert cf.kv.namespaces.metadata.get("meta2", account_id=account, namespace_id=ns) == {"n": 1}
    values.update(
        "abs",
        account_id=account,
        namespace_id=ns,
        value=b"y",
        expiration=int(time.time()) + 3600,
    )
    values.delete("to-do:123", account_id=account, namespace_id=ns)
    with pytest.raises(NotFoundError) as info:
        values.get("to-do:123", account_id=account, namespace_id=ns)
    body = info.value.body
    assert isinstance(body, dict) and body["errors"][0]["code"] == 10009
    values.delete("never-existed", account_id=account, namespace_id=ns)


def test_binary_value_file_upload(cf: Cloudflare, account: str, ns: str) -> None:
    data = bytes(range(256)) * 1000
    cf.kv.namespaces.values.update(
        "bin", account_id=account, namespace_id=ns, value=("blob.bin", data)
    )
    assert cf.kv.namespaces.values.get("bin", account_id=account, namespace_id=ns).read() == data


def test_errors(cf: Cloudflare, account: str, ns: str) -> None:
    values = cf.kv.namespaces.values
    with pytest.raises(BadRequestError) as bad:
        values.update("k", account_id=account, namespace_id=ns, value=b"v", expiration_ttl=10)
    assert bad.value.body["errors"][0]["code"] == 10034  # type: ignore[index]
    with pytest.raises(NotFoundError) as missing:
        values.get("k", account_id=account, namespace_id="0" * 32)
    assert missing.value.body["errors"][0]["code"] == 10013  # type: ignore[index]
    with pytest.raises(NotFoundError):
        cf.kv.namespaces.metadata.get("nope", account_id=account, namespace_id=ns)
    with pytest.raises(BadRequestError) as bad:
        list(cf.kv.namespaces.keys.list(ns, account_id=account, limit=5000))
    assert bad.value.body["errors"][0]["code"] == 10028  # type: ignore[index]


def test_keys_auto_pagination(cf: Cloudflare, account: str, ns: str) -> None:
    body = [{"key": f"user:{i:04d}", "value": str(i), "metadata": {"i": i}} for i in range(2500)]
    result = cf.kv.namespaces.bulk_update(ns, account_id=account, body=body)  # type: ignore[arg-type]
    assert result is not None and result.successful_key_count == 2500
    keys = list(cf.kv.namespaces.keys.list(ns, account_id=account, prefix="user:"))
    assert [k.name for k in keys] == [f"user:{i:04d}" for i in range(2500)]
    assert keys[7].metadata == {"i": 7}
    small = list(cf.kv.namespaces.keys.list(ns, account_id=account, prefix="user:00", limit=10))
    assert len(small) == 100
    first = cf.kv.namespaces.keys.list(ns, account_id=account, limit=10)
    assert len(first.result) == 10 and first.result_info is not None
    assert first.result_info.cursor


def test_bulk_update_get_delete(cf: Cloudflare, account: str, ns: str) -> None:
    cf.kv.namespaces.bulk_update(
        ns,
        account_id=account,
        body=[
            {"key": "a", "value": "1"},
            {"key": "b", "value": base64.b64encode(b"two").decode(), "base64": True},
            {"key": "c", "value": '{"x": 3}', "metadata": {"m": "c"}, "expiration_ttl": 600},
        ],
    )
    got = cf.kv.namespaces.bulk_get(ns, account_id=account, keys=["a", "b", "missing"])
    assert got is not None
    assert got.to_dict()["values"] == {"a": "1", "b": "two", "missing": None}
    got = cf.kv.namespaces.bulk_get(ns, account_id=account, keys=["c"], type="json")
    assert got is not None and got.to_dict()["values"] == {"c": {"x": 3}}
    got = cf.kv.namespaces.bulk_get(ns, account_id=account, keys=["a", "c"], with_metadata=True)
    assert got is not None
    values: Any = got.to_dict()["values"]
    # edgekv adds each entry's "version"; the SDK keeps unknown fields as they came
    assert values["a"].pop("version").isdigit()
    assert values["a"] == {"value": "1", "metadata": None}
    assert values["c"]["metadata"] == {"m": "c"} and values["c"]["value"] == '{"x": 3}'
    deleted = cf.kv.namespaces.bulk_delete(ns, account_id=account, body=["a", "b"])
    assert deleted is not None and deleted.successful_key_count == 2
    remaining = [k.name for k in cf.kv.namespaces.keys.list(ns, account_id=account)]
    assert remaining == ["c"]


def test_deprecated_keys_bulk_calls(cf: Cloudflare, account: str, ns: str) -> None:
    keys = cf.kv.namespaces.keys
    with pytest.warns(DeprecationWarning):
        keys.bulk_update(ns, account_id=account, body=[{"key": "d", "value": "dv"}])
    with pytest.warns(DeprecationWarning):
        got = keys.bulk_get(ns, account_id=account, keys=["d"])
    assert got is not None and got.to_dict()["values"] == {"d": "dv"}
    with pytest.warns(DeprecationWarning):
        keys.bulk_delete(ns, account_id=account, body=["d"])
    assert list(keys.list(ns, account_id=account)) == []


def test_auth_errors(shared_central: Central, account: str) -> None:
    with (
        Cloudflare(base_url=shared_central.api, api_token="wrong", max_retries=0) as bad,
        pytest.raises(PermissionDeniedError),
    ):
        list(bad.kv.namespaces.list(account_id=account))
    with (
        Cloudflare(
            base_url=shared_central.api,
            api_key="wrong",
            api_email="me@example.com",
            max_retries=0,
        ) as bad,
        pytest.raises(PermissionDeniedError),
    ):
        list(bad.kv.namespaces.list(account_id=account))
    with Cloudflare(
        base_url=shared_central.api,
        api_key=shared_central.token,
        api_email="me@example.com",
        max_retries=0,
    ) as good:
        list(good.kv.namespaces.list(account_id=account))
    assert issubclass(AuthenticationError, Exception)


async def test_async_client(shared_central: Central, account: str) -> None:
    async with AsyncCloudflare(
        base_url=shared_central.api, api_token=shared_central.token, max_retries=0
    ) as cf:
        ns = await cf.kv.namespaces.create(account_id=account, title="async sdk")
        assert ns is not None
        await cf.kv.namespaces.values.update(
            "k", account_id=account, namespace_id=ns.id, value=b"v", metadata=json.dumps([1])
        )
        got = await cf.kv.namespaces.values.get("k", account_id=account, namespace_id=ns.id)
        assert await got.read() == b"v"
        names = [k.name async for k in cf.kv.namespaces.keys.list(ns.id, account_id=account)]
        assert names == ["k"]
        await cf.kv.namespaces.delete(ns.id, account_id=account)
