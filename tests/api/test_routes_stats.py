"""`…/{ns}/stats`, `…/{ns}/metrics`, `/metrics`, `/user` and the security headers, over every
engine (the `api` fixture), with real HTTP."""

from __future__ import annotations

import re

import httpx

from edgekv.api.auth import create_token
from tests.api.conftest import Api, codes


def stats_url(api: Api, ns: str) -> str:
    return f"{api.namespaces}/{ns}/stats"


async def test_stats_count_live_keys_and_their_bytes(api: Api, ns: str) -> None:
    r = await api.http.get(stats_url(api, ns))
    assert r.status_code == 200 and r.json()["result"] == {"key_count": 0, "bytes": 0}
    await api.http.put(f"{api.namespaces}/{ns}/values/a", content=b"hello")
    bulk = [{"key": f"k{i}", "value": "v", "metadata": {"i": i}} for i in range(3)]
    await api.http.put(f"{api.namespaces}/{ns}/bulk", json=bulk)
    await api.http.put(
        f"{api.namespaces}/{ns}/values/brief",
        content=b"x",
        params={"expiration_ttl": 60},
    )
    r = await api.http.get(stats_url(api, ns))
    # a+hello = 6; k0+v+{"i":0} = 3+7 each; brief+x = 6
    assert r.json() == {
        "success": True,
        "errors": [],
        "messages": [],
        "result": {"key_count": 5, "bytes": 6 + 3 * 10 + 6},
    }
    api.clock.advance(61)  # "brief" expired, not purged yet: not a live key
    assert (await api.http.get(stats_url(api, ns))).json()["result"] == {
        "key_count": 4,
        "bytes": 36,
    }
    await api.http.post(f"{api.namespaces}/{ns}/bulk/delete", json=["k0", "k1"])
    assert (await api.http.get(stats_url(api, ns))).json()["result"]["key_count"] == 2


async def test_stats_need_the_namespace_and_a_token_that_may_see_it(api: Api, ns: str) -> None:
    r = await api.http.get(stats_url(api, "0" * 32))
    assert r.status_code == 404 and codes(r) == [10013]
    other = await api.create_namespace("other")
    limited, _ = await create_token(api.store, api.account, namespaces=[other])
    async with api.client(limited) as client:
        assert (await client.get(stats_url(api, other))).status_code == 200
        r = await client.get(stats_url(api, ns))
        assert r.status_code == 403 and codes(r) == [10000]
    async with api.client() as anonymous:
        assert (await anonymous.get(stats_url(api, ns))).status_code == 401


async def test_prometheus_counters(api: Api, ns: str) -> None:
    await api.http.put(f"{api.namespaces}/{ns}/values/secret-key", content=b"secret-value")
    for _ in range(3):
        await api.http.get(f"{api.namespaces}/{ns}/values/secret-key")
    await api.http.get(f"{api.namespaces}/{ns}/values/missing")
    async with api.client() as anonymous:
        assert (await anonymous.get(api.url + "/metrics")).status_code == 401
    r = await api.http.get(api.url + "/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.text
    assert 'edgekv_requests_total{op="get",status="200"} 3' in text
    assert 'edgekv_requests_total{op="get",status="404"} 1' in text
    assert 'edgekv_requests_total{op="put",status="200"} 1' in text
    assert "# TYPE edgekv_request_duration_seconds histogram" in text
    assert 'edgekv_request_duration_seconds_count{op="get"} 4' in text
    assert 'edgekv_request_duration_seconds_bucket{op="get",le="+Inf"} 4' in text
    buckets = [int(n) for n in re.findall(r'_bucket\{op="get",le="[^"]+"\} (\d+)', text)]
    assert buckets == sorted(buckets) and buckets[-1] == 4  # cumulative
    assert "secret" not in text  # labels never carry keys or values
    assert ns not in text


async def test_namespace_metrics_window(api: Api, ns: str) -> None:
    for i in range(5):
        await api.http.put(f"{api.namespaces}/{ns}/values/k{i}", content=b"v")
    await api.http.get(f"{api.namespaces}/{ns}/values/nope")
    r = await api.http.get(f"{api.namespaces}/{ns}/metrics")
    assert r.status_code == 200
    window = r.json()["result"]
    assert len(window["minutes"]) == 60
    assert window["minutes"][-1]["ops"] == {"put": 5, "get": 1}
    put = window["operations"]["put"]
    assert put["count"] == 5 and put["errors"] == 0
    assert 0 < put["p50_seconds"] <= put["p99_seconds"] <= 10
    assert window["operations"]["get"]["errors"] == 1


async def test_user_and_verify_describe_the_token(api: Api) -> None:
    verify = (await api.http.get(api.url + "/client/v4/user/tokens/verify")).json()["result"]
    assert verify["status"] == "active"
    user = (await api.http.get(api.url + "/client/v4/user")).json()["result"]
    assert user["id"] == verify["id"] and user["email"].endswith("@edgekv.invalid")
    accounts = (await api.http.get(api.url + "/client/v4/accounts")).json()["result"]
    assert [a["id"] for a in accounts] == [api.account]
    async with api.client() as anonymous:
        assert (await anonymous.get(api.url + "/client/v4/user")).status_code == 401


async def test_revoked_token_is_refused_at_once(api: Api, ns: str) -> None:
    secret, record = await create_token(api.store, api.account, name="short-lived")
    async with api.client(secret) as client:
        assert (await client.get(stats_url(api, ns))).status_code == 200  # now cached
        await api.store.revoke_token(record.id)
        r = await client.get(stats_url(api, ns))
        if r.status_code != 401:  # SQLite re-reads the revision every 5 ms
            r = await _after_revision(client, stats_url(api, ns))
        assert r.status_code == 401 and codes(r) == [10000]
    assert (await api.http.get(stats_url(api, ns))).status_code == 200  # others unaffected


async def _after_revision(client: httpx.AsyncClient, url: str) -> httpx.Response:
    import asyncio

    for _ in range(100):
        await asyncio.sleep(0.01)
        r = await client.get(url)
        if r.status_code == 401:
            return r
    return r


async def test_every_answer_has_the_security_headers(api: Api, ns: str) -> None:
    for url in (stats_url(api, ns), api.url + "/client/v4/nowhere", api.url + "/metrics"):
        r = await api.http.get(url)
        assert r.headers["x-frame-options"] == "DENY", url
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], url
