"""Versions over REST (routes_values.py): `ETag` on reads and writes, `If-Match` /
`If-None-Match: *` with the 412 envelope (code 10412), and malformed conditions as 400s."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.api.conftest import Api, codes, message


def etag(r: httpx.Response) -> str:
    value = r.headers["etag"]
    assert value.startswith('"') and value.endswith('"') and len(value) > 2
    return value


async def test_etag_on_write_value_and_metadata_reads(api: Api, ns: str) -> None:
    url = f"{api.namespaces}/{ns}/values/k"
    first = await api.http.put(url, content=b"v")
    assert first.status_code == 200 and first.json()["result"] is None
    tag = etag(first)
    assert etag(await api.http.get(url)) == tag
    assert etag(await api.http.get(f"{api.namespaces}/{ns}/metadata/k")) == tag
    again = await api.http.put(url, content=b"v")  # the same bytes: a new version
    assert etag(again) != tag
    missing = await api.http.get(f"{api.namespaces}/{ns}/values/nope")
    assert missing.status_code == 404 and "etag" not in missing.headers


async def test_if_match_and_if_none_match(api: Api, ns: str) -> None:
    url = f"{api.namespaces}/{ns}/values/k"
    created = await api.http.put(url, content=b"1", headers={"If-None-Match": "*"})
    assert created.status_code == 200
    tag = etag(created)
    refused = await api.http.put(url, content=b"x", headers={"If-None-Match": "*"})
    assert refused.status_code == 412 and codes(refused) == [10412]
    assert message(refused) == "put: 'precondition failed'"
    assert refused.headers["etag"] == tag
    updated = await api.http.put(url, content=b"2", headers={"If-Match": tag})
    assert updated.status_code == 200
    stale = await api.http.put(url, content=b"x", headers={"If-Match": tag})
    assert stale.status_code == 412 and stale.headers["etag"] == etag(updated)
    assert (await api.http.get(url)).content == b"2"
    r = await api.http.delete(url, headers={"If-Match": tag})
    assert r.status_code == 412 and message(r) == "delete: 'precondition failed'"
    r = await api.http.delete(url, headers={"If-Match": etag(updated)})
    assert r.status_code == 200
    r = await api.http.delete(url, headers={"If-Match": etag(updated)})
    assert r.status_code == 412 and "etag" not in r.headers  # missing: no current ETag
    r = await api.http.put(url, content=b"x", headers={"If-Match": tag})
    assert r.status_code == 412 and "etag" not in r.headers


async def test_conditional_multipart_write(api: Api, ns: str) -> None:
    url = f"{api.namespaces}/{ns}/values/k"
    files = {"value": ("value", b"v"), "metadata": (None, '{"n": 1}')}
    created = await api.http.put(url, files=files, headers={"If-None-Match": "*"})
    assert created.status_code == 200
    r = await api.http.put(url, files=files, headers={"If-None-Match": "*"})
    assert r.status_code == 412
    assert (await api.http.get(f"{api.namespaces}/{ns}/metadata/k")).json()["result"] == {"n": 1}


@pytest.mark.parametrize(
    "headers",
    [
        {"If-Match": "1"},  # not quoted
        {"If-Match": 'W/"1"'},  # weak tags never come from edgekv
        {"If-Match": '"1", "2"'},
        {"If-Match": "*"},
        {"If-Match": '"a"b"'},
        {"If-None-Match": '"1"'},
        {"If-None-Match": "*", "If-Match": '"1"'},
    ],
)
async def test_malformed_conditions_are_400(api: Api, ns: str, headers: dict[str, str]) -> None:
    url = f"{api.namespaces}/{ns}/values/k"
    r = await api.http.put(url, content=b"v", headers=headers)
    assert r.status_code == 400 and codes(r) == [10001], r.text
    assert (await api.http.get(url)).status_code == 404  # nothing written


async def test_malformed_delete_conditions_are_400(api: Api, ns: str) -> None:
    url = f"{api.namespaces}/{ns}/values/k"
    await api.http.put(url, content=b"v")
    for headers in ({"If-Match": "nope"}, {"If-None-Match": "*"}):
        r = await api.http.delete(url, headers=headers)
        assert r.status_code == 400 and codes(r) == [10001]
    assert (await api.http.get(url)).content == b"v"


async def test_concurrent_compare_and_swap_over_rest(api: Api, ns: str) -> None:
    url = f"{api.namespaces}/{ns}/values/counter"
    tag = etag(await api.http.put(url, content=b"0"))
    rs = await asyncio.gather(
        *(api.http.put(url, content=b"%d" % i, headers={"If-Match": tag}) for i in range(16))
    )
    assert sorted(r.status_code for r in rs) == [200] + [412] * 15
