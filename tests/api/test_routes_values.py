"""routes_values.py: value read / write / delete, metadata, key listing, edge extensions."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import orjson
import pytest

from edgekv import KVNamespace
from tests.api.conftest import Api, codes, message

NOW = 1_700_000_000  # the fake clock's start


def value_url(api: Api, ns: str, key: str) -> str:
    return f"{api.namespaces}/{ns}/values/{quote(key, safe='')}"


async def test_raw_write_read_delete(api: Api, ns: str) -> None:
    url = value_url(api, ns, "to-do:123")
    r = await api.http.put(url, content=b"buy milk")
    assert r.status_code == 200 and r.json() == {
        "success": True,
        "errors": [],
        "messages": [],
        "result": None,
    }
    r = await api.http.get(url)
    assert r.status_code == 200
    assert r.content == b"buy milk"
    assert r.headers["content-type"] == "application/octet-stream"
    assert "expiration" not in r.headers and "edgekv-metadata" not in r.headers
    r = await api.http.delete(url)
    assert r.status_code == 200 and r.json()["result"] is None
    r = await api.http.get(url)
    assert r.status_code == 404 and codes(r) == [10009]
    assert message(r) == "get: 'key not found'"
    r = await api.http.delete(url)  # a missing key is not an error
    assert r.status_code == 200


@pytest.mark.parametrize(
    "content_type", [None, "application/octet-stream", "text/plain", "application/json"]
)
async def test_raw_body_with_any_content_type(api: Api, ns: str, content_type: str | None) -> None:
    data = bytes(range(256)) * 4  # not UTF-8, not JSON: stored as it is
    headers = {} if content_type is None else {"content-type": content_type}
    r = await api.http.put(value_url(api, ns, "bin"), content=data, headers=headers)
    assert r.status_code == 200, r.text
    assert (await api.http.get(value_url(api, ns, "bin"))).content == data


async def test_empty_value(api: Api, ns: str) -> None:
    assert (await api.http.put(value_url(api, ns, "empty"), content=b"")).status_code == 200
    r = await api.http.get(value_url(api, ns, "empty"))
    assert r.status_code == 200 and r.content == b""


@pytest.mark.parametrize(
    "key",
    ["a/b", "dir/a b:c!", "100%", "a+b", "é/ü", "🙂", "...", "./", "?x=1&y", "#frag", "a%2Fb"],
)
async def test_keys_travel_as_one_segment(api: Api, ns: str, key: str) -> None:
    r = await api.http.put(value_url(api, ns, key), content=key.encode())
    assert r.status_code == 200, r.text
    assert (await api.http.get(value_url(api, ns, key))).content == key.encode()
    r = await api.http.get(f"{api.namespaces}/{ns}/keys")
    assert [k["name"] for k in r.json()["result"]] == [key]


async def test_colon_raw_or_encoded_is_the_same_key(api: Api, ns: str) -> None:
    # wrangler encodes ":" as %3A, the SDKs leave it raw
    await api.http.put(f"{api.namespaces}/{ns}/values/a%3Ab", content=b"1")
    r = await api.http.get(f"{api.namespaces}/{ns}/values/a:b")
    assert r.content == b"1"


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [("", 400, 10042), ("%2E", 400, 10042), ("%2E%2E", 400, 10042), ("k" * 513, 414, 10030)],
)
async def test_illegal_keys(api: Api, ns: str, raw: str, status: int, code: int) -> None:
    url = f"{api.namespaces}/{ns}/values/{raw}"
    for method in ("GET", "PUT", "DELETE"):
        r = await api.http.request(method, url, content=b"v" if method == "PUT" else None)
        assert r.status_code == status and codes(r) == [code], (method, r.text)


async def test_key_of_512_bytes_is_fine(api: Api, ns: str) -> None:
    key = "é" * 256  # 512 bytes of UTF-8
    assert (await api.http.put(value_url(api, ns, key), content=b"v")).status_code == 200
    r = await api.http.put(value_url(api, ns, key + "x"), content=b"v")
    assert r.status_code == 414 and codes(r) == [10030]
    assert message(r) == "put: 'UTF-8 encoded length of 513 exceeds key length limit of 512.'"


async def test_unknown_namespace_is_10013_missing_key_is_10009(api: Api, ns: str) -> None:
    other = "f" * 32
    for method in ("GET", "PUT", "DELETE"):
        r = await api.http.request(method, value_url(api, other, "k"), content=b"")
        assert r.status_code == 404 and codes(r) == [10013]
    for path in ("keys", "metadata/k"):
        r = await api.http.get(f"{api.namespaces}/{other}/{path}")
        assert r.status_code == 404 and codes(r) == [10013]
    r = await api.http.get(value_url(api, ns, "missing"))
    assert r.status_code == 404 and codes(r) == [10009]
    r = await api.http.get(f"{api.namespaces}/{ns}/metadata/missing")
    assert r.status_code == 404 and codes(r) == [10009]


# -- expiration ----------------------------------------------------------------------------------
async def test_expiration_ttl_sets_header_and_expires(api: Api, ns: str) -> None:
    url = value_url(api, ns, "k")
    r = await api.http.put(url, content=b"v", params={"expiration_ttl": "120"})
    assert r.status_code == 200
    r = await api.http.get(url)
    assert r.headers["expiration"] == str(NOW + 120)
    r = await api.http.get(f"{api.namespaces}/{ns}/keys")
    assert r.json()["result"] == [{"name": "k", "expiration": NOW + 120}]
    api.clock.advance(119)
    assert (await api.http.get(url)).status_code == 200
    api.clock.advance(1)  # gone at its expiration second
    assert (await api.http.get(url)).status_code == 404
    assert (await api.http.get(f"{api.namespaces}/{ns}/keys")).json()["result"] == []


async def test_absolute_expiration_and_ttl_wins(api: Api, ns: str) -> None:
    url = value_url(api, ns, "k")
    r = await api.http.put(url, content=b"v", params={"expiration": NOW + 600})
    assert (await api.http.get(url)).headers["expiration"] == str(NOW + 600)
    # both: ttl wins and the (invalid) expiration is not even checked
    r = await api.http.put(url, content=b"v", params={"expiration": 5, "expiration_ttl": 60})
    assert r.status_code == 200
    assert (await api.http.get(url)).headers["expiration"] == str(NOW + 60)
    # overwriting without options removes the expiration
    await api.http.put(url, content=b"v")
    assert "expiration" not in (await api.http.get(url)).headers


@pytest.mark.parametrize(
    ("params", "code", "text"),
    [
        ({"expiration_ttl": "30"}, 10034, "Invalid expiration_ttl of 30. Expiration TTL must be"),
        ({"expiration_ttl": "0"}, 10034, "Invalid expiration_ttl of 0. Please specify integer"),
        ({"expiration_ttl": "abc"}, 10034, "Invalid expiration_ttl of 0."),
        ({"expiration": str(NOW)}, 10033, f"Invalid expiration of {NOW}. Please specify"),
        (
            {"expiration": str(NOW + 59)},
            10033,
            f"Invalid expiration of {NOW + 59}. Expiration times must be at least 60 seconds",
        ),
        ({"expiration": ""}, 10033, "Invalid expiration of 0."),
    ],
)
async def test_invalid_expiration(
    api: Api, ns: str, params: dict[str, str], code: int, text: str
) -> None:
    r = await api.http.put(value_url(api, ns, "k"), content=b"v", params=params)
    assert r.status_code == 400 and codes(r) == [code]
    assert message(r).startswith(f"put: '{text}")


# -- multipart -------------------------------------------------------------------------------
async def test_multipart_value_field_and_metadata(api: Api, ns: str) -> None:
    url = value_url(api, ns, "m")
    files = {"value": (None, b"hello"), "metadata": (None, b'{"done": false, "n": "\xc3\xa9"}')}
    r = await api.http.put(url, files=files, params={"expiration_ttl": 300})
    assert r.status_code == 200, r.text
    r = await api.http.get(url)
    assert r.content == b"hello"
    assert r.headers["expiration"] == str(NOW + 300)
    header = r.headers["edgekv-metadata"]
    assert "=" not in header
    raw = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
    assert raw == '{"done":false,"n":"é"}'.encode()  # compact, as JSON.stringify writes it
    r = await api.http.get(f"{api.namespaces}/{ns}/metadata/m")
    assert r.json()["result"] == {"done": False, "n": "é"}


async def test_multipart_file_part_and_typed_metadata(api: Api, ns: str) -> None:
    files = {
        "value": ("blob.bin", bytes(range(256)), "application/octet-stream"),
        "metadata": ("m.json", b"[1, 2, 3]", "application/json"),
    }
    r = await api.http.put(value_url(api, ns, "f"), files=files)
    assert r.status_code == 200, r.text
    assert (await api.http.get(value_url(api, ns, "f"))).content == bytes(range(256))
    r = await api.http.get(f"{api.namespaces}/{ns}/metadata/f")
    assert r.json()["result"] == [1, 2, 3]


@pytest.mark.parametrize("metadata", [b"0", b'""', b"false", b'"text"'])
async def test_falsy_metadata_is_kept(api: Api, ns: str, metadata: bytes) -> None:
    r = await api.http.put(
        value_url(api, ns, "k"), files={"value": (None, b"v"), "metadata": (None, metadata)}
    )
    assert r.status_code == 200
    r = await api.http.get(f"{api.namespaces}/{ns}/metadata/k")
    assert r.json()["result"] == json.loads(metadata)


async def test_no_metadata_reads_null(api: Api, ns: str) -> None:
    await api.http.put(value_url(api, ns, "k"), content=b"v")
    r = await api.http.get(f"{api.namespaces}/{ns}/metadata/k")
    assert r.status_code == 200 and r.json()["result"] is None


async def test_multipart_errors(api: Api, ns: str) -> None:
    url = value_url(api, ns, "k")
    r = await api.http.put(url, files={"metadata": (None, b"{}")})
    assert r.status_code == 400 and codes(r) == [10001]
    assert "'value' part" in message(r)
    r = await api.http.put(url, files={"value": (None, b"v"), "metadata": (None, b"{nope")})
    assert r.status_code == 400 and codes(r) == [10047]
    big = orjson.dumps({"k": "x" * 1100})
    r = await api.http.put(url, files={"value": (None, b"v"), "metadata": (None, big)})
    assert r.status_code == 413 and codes(r) == [10024]
    assert message(r) == f"put: 'Metadata length of {len(big)} exceeds limit of 1024.'"
    bad = {"content-type": "multipart/form-data; boundary=xyz"}
    for body in (b"garbage", b'--xyz\r\nContent-Disposition: form-data; name="value"\r\n\r\nv'):
        r = await api.http.put(url, content=body, headers=bad)
        assert r.status_code == 400 and codes(r) == [10001], body
    r = await api.http.put(url, content=b"x", headers={"content-type": "multipart/form-data"})
    assert r.status_code == 400 and codes(r) == [10001]
    assert (await api.http.get(url)).status_code == 404  # nothing was written


# -- listing -------------------------------------------------------------------------------
async def test_list_pages_equal_the_binding(api: Api, ns: str) -> None:
    names = [f"user:{i:03d}" for i in range(25)] + ["other", "B", "a", "\uffff", "\U00010000"]
    await api.http.put(
        f"{api.namespaces}/{ns}/bulk",
        json=[{"key": k, "value": "v", "metadata": {"i": i}} for i, k in enumerate(names)],
    )
    binding = KVNamespace(api.app.client, ns)
    for prefix in (None, "user:", "user:01", "zzz"):
        cursor: str | None = None
        rest_pages: list[tuple[list[str], str]] = []
        while True:
            params: dict[str, str | int] = {"limit": 4}
            if prefix is not None:
                params["prefix"] = prefix
            if cursor:
                params["cursor"] = cursor
            r = await api.http.get(f"{api.namespaces}/{ns}/keys", params=params)
            assert r.status_code == 200
            body = r.json()
            page = [k["name"] for k in body["result"]]
            assert body["result_info"]["count"] == len(page)
            cursor = body["result_info"]["cursor"]
            expected = await binding.list(
                prefix=prefix, limit=4, cursor=rest_pages[-1][1] if rest_pages else None
            )
            assert [k.to_dict() for k in expected.keys] == body["result"]
            assert (expected.cursor or "") == cursor
            rest_pages.append((page, cursor))
            assert not (cursor and not page)  # never a cursor with an empty page
            if not cursor:
                break
        listed = [name for page, _ in rest_pages for name in page]
        want = sorted((n for n in names if n.startswith(prefix or "")), key=str.encode)
        assert listed == want


async def test_list_exact_limit_is_complete(api: Api, ns: str) -> None:
    await api.http.put(
        f"{api.namespaces}/{ns}/bulk", json=[{"key": f"k{i}", "value": "v"} for i in range(3)]
    )
    r = await api.http.get(f"{api.namespaces}/{ns}/keys", params={"limit": 3})
    assert len(r.json()["result"]) == 3 and r.json()["result_info"]["cursor"] == ""
    r = await api.http.get(f"{api.namespaces}/{ns}/keys")  # default limit 1000
    assert r.json()["result_info"] == {"count": 3, "cursor": ""}


@pytest.mark.parametrize("limit", ["1001", "0", "-1", "abc", "", "1.5e9"])
async def test_list_bad_limit_is_10028(api: Api, ns: str, limit: str) -> None:
    r = await api.http.get(f"{api.namespaces}/{ns}/keys", params={"limit": limit})
    assert r.status_code == 400 and codes(r) == [10028]


@pytest.mark.parametrize("limit", ["1", "9", "1000"])
async def test_list_limit_from_1_to_1000(api: Api, ns: str, limit: str) -> None:
    r = await api.http.get(f"{api.namespaces}/{ns}/keys", params={"limit": limit})
    assert r.status_code == 200


async def test_list_bad_cursor_and_long_prefix(api: Api, ns: str) -> None:
    r = await api.http.get(f"{api.namespaces}/{ns}/keys", params={"cursor": "_w"})
    assert r.status_code == 400 and codes(r) == [10041]
    r = await api.http.get(f"{api.namespaces}/{ns}/keys", params={"prefix": "p" * 513})
    assert r.status_code == 414 and codes(r) == [10030]


async def test_list_prefix_is_literal(api: Api, ns: str) -> None:
    for key in ("a%b", "a_b", "axb", "a\\b"):
        await api.http.put(value_url(api, ns, key), content=b"v")
    for prefix, want in (("a%", ["a%b"]), ("a_", ["a_b"]), ("a\\", ["a\\b"])):
        r = await api.http.get(f"{api.namespaces}/{ns}/keys", params={"prefix": prefix})
        assert [k["name"] for k in r.json()["result"]] == want


# -- writes of a remote binding (edgekv-binding: 1) -------------------------------------------
async def test_binding_writes_need_only_a_future_expiration(api: Api, ns: str) -> None:
    url = value_url(api, ns, "k")
    binding = {"edgekv-binding": "1"}
    # validated "now + 60" on the location a second ago: now + 59 here
    r = await api.http.put(url, content=b"v", params={"expiration": NOW + 59}, headers=binding)
    assert r.status_code == 200, r.text
    assert (await api.http.get(url)).headers["expiration"] == str(NOW + 59)
    r = await api.http.put(url, content=b"v", params={"expiration": NOW + 1}, headers=binding)
    assert r.status_code == 200
    for past in (NOW, NOW - 5):
        r = await api.http.put(url, content=b"v", params={"expiration": past}, headers=binding)
        assert r.status_code == 400 and codes(r) == [10033]
    # without the header, the rule of 60 s stands
    r = await api.http.put(url, content=b"v", params={"expiration": NOW + 59})
    assert r.status_code == 400 and codes(r) == [10033]
    # a TTL is relative to this server's clock, header or not
    r = await api.http.put(url, content=b"v", params={"expiration_ttl": 60}, headers=binding)
    assert (await api.http.get(url)).headers["expiration"] == str(NOW + 60)
    r = await api.http.put(url, content=b"v", params={"expiration_ttl": 59}, headers=binding)
    assert r.status_code == 400 and codes(r) == [10034]
    bulk = f"{api.namespaces}/{ns}/bulk"
    items = [{"key": "b", "value": "v", "expiration": NOW + 30}]
    assert (await api.http.put(bulk, json=items, headers=binding)).status_code == 200
    assert (await api.http.put(bulk, json=items)).status_code == 400
    items.append({"key": "c", "value": "v", "expiration_ttl": 60})
    assert (await api.http.put(bulk, json=items, headers=binding)).status_code == 400
    r = await api.http.get(f"{api.namespaces}/{ns}/keys", params={"prefix": "b"})
    assert r.json()["result"] == [{"name": "b", "expiration": NOW + 30}]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("expiration_ttl=1000000000000000000000000000000", 10034),
        ("expiration_ttl=1e30", 10034),
        ("expiration_ttl=9007199254740992", 10034),
        ("expiration=9223372036854775808", 10033),
        ("expiration=99999999999999999999999999999999999999", 10033),
        ("expiration=" + "9" * 5000, 10033),  # beyond int()'s digit limit: counts as 0
    ],
)
async def test_numbers_too_large_are_400(api: Api, ns: str, query: str, code: int) -> None:
    r = await api.http.put(f"{value_url(api, ns, 'k')}?{query}", content=b"v")
    assert r.status_code == 400, r.text
    assert codes(r) == [code]
    assert (await api.http.get(value_url(api, ns, "k"))).status_code == 404
