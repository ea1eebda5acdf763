"""A real JavaScript worker in the real workerd under `edgekv dev`: every binding call, the exact
messages reaching JavaScript, keys that need encoding, and the data landing in the local store.
One `edgekv dev` (one workerd) serves the whole module."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import workerd
from tests.workers.processes import Server, run_cli
from tests.workers.workerd.js import NS2_ID, NS_ID, TRICKY, Caller, write_project

pytestmark = pytest.mark.skipif(not workerd.available(), reason="node/npm not installed")


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    binary = workerd.ensure_installed()
    root = write_project(tmp_path_factory.mktemp("jsdev"))
    server = Server(
        ["dev", "--persist-to", str(root / "state"), "--workerd", str(binary)],
        cwd=root,
        log_path=root / "dev.log",
    )
    with server:
        yield server, root


@pytest.fixture
def call(dev: tuple[Server, Path]) -> Iterator[Caller]:
    with httpx.Client(base_url=dev[0].url, timeout=60) as http:
        yield Caller(http)


def test_text_values_and_every_get_type(call: Caller) -> None:
    assert call.ok("put", "greeting", "hello, wörld") == {"undefined": True}
    assert call.ok("get", "greeting") == "hello, wörld"
    assert call.ok("get", "greeting", "text") == "hello, wörld"
    assert call.ok("get", "greeting", {"type": "text", "cacheTtl": 60}) == "hello, wörld"
    assert call.ok("get", "greeting", "arrayBuffer") == {
        "bytes": base64.b64encode("hello, wörld".encode()).decode()
    }
    assert call.ok("get", "greeting", "stream") == {"stream": "hello, wörld"}
    call.ok("put", "doc", '{"a": [1, 2]}')
    assert call.ok("get", "doc", "json") == {"a": [1, 2]}
    assert call.ok("get", "doc", {"type": "json", "cacheTtl": 3600}) == {"a": [1, 2]}
    assert call.error("get", "greeting", "json").startswith("SyntaxError")
    assert call.ok("get", "never-written") is None
    assert call.ok("get", "never-written", "json") is None
    call.ok("put", "empty", "")
    assert call.ok("get", "empty") == ""


def test_binary_values_round_trip(call: Caller) -> None:
    raw = bytes([0, 1, 2, 255, 254, 10, 13])
    call.ok("putBytes", "bin", value=base64.b64encode(raw).decode())
    assert call.ok("get", "bin", "arrayBuffer") == {"bytes": base64.b64encode(raw).decode()}


def test_cache_ttl_below_the_minimum_is_the_exact_error(call: Caller) -> None:
    assert call.error("get", "greeting", {"cacheTtl": 30}) == (
        "Error: KV GET failed: 400 Invalid cache_ttl of 30. Cache TTL must be at least 60."
    )
    assert call.error("get", "greeting", {"cacheTtl": 0}) == (
        "Error: KV GET failed: 400 Invalid cache_ttl of 0. Cache TTL must be at least 60."
    )


def test_metadata_utf8_both_ways(call: Caller) -> None:
    meta = {"a": 1, "u": "🤓", "nested": {"z": [1, None]}}
    call.ok("put", "m", "with-meta", {"metadata": meta})
    assert call.ok("getWithMetadata", "m") == {
        "value": "with-meta",
        "metadata": meta,
        "cacheStatus": None,
    }
    for odd in ("just a string", 0, False, [1, "x"]):
        call.ok("put", "odd", "v", {"metadata": odd})
        assert call.ok("getWithMetadata", "odd")["metadata"] == odd
        listed = call.ok("list", {"prefix": "odd"})["keys"]
        assert listed == [{"name": "odd", "metadata": odd}]
    call.ok("put", "plain", "v")
    assert call.ok("getWithMetadata", "plain") == {
        "value": "v",
        "metadata": None,
        "cacheStatus": None,
    }
    assert call.ok("getWithMetadata", "nope") == {
        "value": None,
        "metadata": None,
        "cacheStatus": None,
    }
    assert call.ok("getWithMetadata", "m", "stream")["value"] == {"stream": "with-meta"}


def test_put_options_and_their_exact_errors(call: Caller) -> None:
    now = int(time.time())
    call.ok("put", "exp", "v", {"expiration": now + 3600})
    call.ok("put", "ttl", "v", {"expirationTtl": 300})
    keys = {k["name"]: k for k in call.ok("list", {"prefix": ""})["keys"]}
    assert keys["exp"]["expiration"] == now + 3600
    assert now + 299 <= keys["ttl"]["expiration"] <= now + 302
    assert call.error("put", "k", "v", {"expirationTtl": 5}) == (
        "Error: KV PUT failed: 400 Invalid expiration_ttl of 5. Expiration TTL must be at least 60."
    )
    assert call.error("put", "k", "v", {"expirationTtl": 0}) == (
        "Error: KV PUT failed: 400 Invalid expiration_ttl of 0. "
        "Please specify integer greater than 0."
    )
    assert call.error("put", "k", "v", {"expiration": 1000}) == (
        "Error: KV PUT failed: 400 Invalid expiration of 1000. Please specify integer greater "
        "than the current number of seconds since the UNIX epoch."
    )
    soon = now + 10
    message = call.error("put", "k", "v", {"expiration": soon})
    assert message.startswith("Error: KV PUT failed: 400 Invalid expiration of ")
    assert message.endswith("Expiration times must be at least 60 seconds in the future.")
    assert call.error("put", "k", "v", {"metadata": {"x": "y" * 1100}}) == (
        "Error: KV PUT failed: 413 Metadata length of 1108 exceeds limit of 1024."
    )
    # Both given: the TTL wins (the expiration is not even checked).
    call.ok("put", "both", "v", {"expiration": 5, "expirationTtl": 120})
    assert call.ok("get", "k") is None  # nothing refused was stored


def test_stream_puts_chunked_and_over_the_limit(call: Caller) -> None:
    call.ok("putStream", "st", {"expirationTtl": 120}, value=["chunk1-", "chunk2-", "chunk3"])
    assert call.ok("get", "st") == "chunk1-chunk2-chunk3"
    size = 3 * 1024 * 1024
    call.ok("putBig", "big", value=size)
    assert call.ok("get", "big") == "b" * size
    limit = 25 * 1024 * 1024
    assert call.error("putBig", "too-big", value=limit + 1) == (
        f"Error: KV PUT failed: 413 Value length of {limit + 1} exceeds limit of {limit}."
    )
    assert call.ok("get", "too-big") is None
    call.ok("putBig", "exactly", value=limit)  # exactly the limit is allowed
    assert call.ok("list", {"prefix": "exactly"})["keys"] == [{"name": "exactly"}]


def test_delete(call: Caller) -> None:
    call.ok("put", "gone", "v")
    assert call.ok("delete", "gone") == {"undefined": True}
    assert call.ok("get", "gone") is None
    assert call.ok("delete", "gone") == {"undefined": True}  # missing: no error


KEYS = [
    "has space",
    "a/b/c/",
    "100%",
    "%2F",
    "ünï©ødé 🤓",
    "what?x=1&y",
    "plus+sign",
    "semi;colon",
    "hash#frag",
    "back\\slash",
    "quote'\"",
    "tab\there",
    "...",
    "./x",
    "bulk/get",
    "/",
]


def test_keys_that_need_encoding(call: Caller) -> None:
    for key in KEYS:
        call.ok("put", key, f"v:{key}")
    for key in KEYS:
        assert call.ok("get", key) == f"v:{key}", key
    listed = {k["name"] for k in call.ok("list")["keys"]}
    assert set(KEYS) <= listed
    assert call.ok("get", KEYS) == {"map": {key: f"v:{key}" for key in KEYS}}
    for key in KEYS:
        call.ok("delete", key)
        assert call.ok("get", key) is None, key


def test_key_checks(call: Caller) -> None:
    # workerd's own checks (no request reaches edgekv) and ours, with the same messages.
    assert call.error("get", "x" * 513) == (
        "Error: KV GET failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512."
    )
    assert call.error("get", "\ud800lone") == (
        "Error: KV GET failed: 400 Key name must be valid Unicode (no lone surrogates)."
    )
    assert call.error("list", {"prefix": "p" * 513}) == (
        "Error: KV GET failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512."
    )


def test_bulk_get(call: Caller) -> None:
    call.ok("put", "b1", "one", {"metadata": {"n": 1}})
    call.ok("put", "b2", '{"two": 2}')
    assert call.ok("get", ["b1", "b2", "b-missing", "b1"]) == {
        "map": {"b1": "one", "b2": '{"two": 2}', "b-missing": None}
    }
    assert call.ok("get", ["b2"], "json") == {"map": {"b2": {"two": 2}}}
    assert call.ok("get", ["b2"], {"type": "json", "cacheTtl": 60}) == {"map": {"b2": {"two": 2}}}
    assert call.ok("getWithMetadata", ["b1", "b2", "b-missing"]) == {
        "map": {
            "b1": {"value": "one", "metadata": {"n": 1}},
            "b2": {"value": '{"two": 2}', "metadata": None},
            "b-missing": None,
        }
    }
    prefix = "Error: KV GET_BULK failed: "
    assert call.error("get", ["b1"], "arrayBuffer") == (
        prefix + '400 "arrayBuffer" is not a valid type. Use "json" or "text"'
    )
    assert call.error("get", [f"k{i}" for i in range(101)]) == (
        prefix + "400 You can request a maximum of 100 keys"
    )
    assert call.error("get", []) == prefix + "400 You must request a minimum of 1 key"
    assert call.error("get", ["b1", ""]) == prefix + "400 Key names must not be empty"
    assert call.error("get", ["."]) == (
        prefix + '400 Illegal key name ".". Please use a different name.'
    )
    assert call.error("get", ["b1"], {"cacheTtl": 10}) == (
        prefix + "400 Invalid cache_ttl of 10. Cache TTL must be at least 60."
    )
    assert call.error("get", ["b1"], "json") == (
        prefix + "400 At least one of the requested keys corresponds to a non-json value"
    )


def test_list_prefix_limit_cursor(call: Caller) -> None:
    for i in range(5):
        call.ok("put", f"page/{i}", "v", {"metadata": {"i": i}})
    first = call.ok("list", {"prefix": "page/", "limit": 2})
    assert [k["name"] for k in first["keys"]] == ["page/0", "page/1"]
    assert first["keys"][0]["metadata"] == {"i": 0}
    assert first["list_complete"] is False and first["cacheStatus"] is None
    second = call.ok("list", {"prefix": "page/", "limit": 2, "cursor": first["cursor"]})
    assert [k["name"] for k in second["keys"]] == ["page/2", "page/3"]
    third = call.ok("list", {"prefix": "page/", "limit": 2, "cursor": second["cursor"]})
    assert [k["name"] for k in third["keys"]] == ["page/4"]
    assert third["list_complete"] is True and "cursor" not in third
    assert call.error("list", {"limit": 1001}) == (
        "Error: KV GET failed: 400 Invalid key_count_limit of 1001. "
        "Please specify an integer less than 1000."
    )
    call.ok("put", "sp ace+plus", "v")
    assert [k["name"] for k in call.ok("list", {"prefix": "sp ace+"})["keys"]] == ["sp ace+plus"]
    assert call.error("list", {"cursor": "!!!not-base64!!!"}) == (
        "Error: KV GET failed: 400 Invalid cursor"
    )


def test_two_bindings_are_two_namespaces(call: Caller) -> None:
    call.ok("put", "same-key", "in KV")
    call.ok("put", "same-key", "in OTHER", ns="OTHER")
    assert call.ok("get", "same-key") == "in KV"
    assert call.ok("get", "same-key", ns="OTHER") == "in OTHER"


def test_vars_imports_health_and_a_crash(dev: tuple[Server, Path]) -> None:
    server, _ = dev
    with server.client() as http:
        assert http.get("/vars").json() == {
            "greeting": "hello",
            "conf": {"depth": 2, "tags": ["a", "b"]},
            "tricky": TRICKY,
            "version": "v1",
        }
        assert http.get("/healthz").text == "ok\n"
        crashed = http.get("/crash")
        assert crashed.status_code == 500
        assert "boom" not in crashed.text
    server.wait_log("GET /crash: the worker raised an exception: Error: boom-from-js")


def test_the_data_is_in_the_local_store(call: Caller, dev: tuple[Server, Path]) -> None:
    _, root = dev
    call.ok("put", "for-the-cli", "written by JavaScript")
    result = run_cli(
        ["kv", "key", "get", "for-the-cli", "--namespace-id", NS_ID, "--persist-to", "state"],
        cwd=root,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"written by JavaScript"
    other = run_cli(
        ["kv", "key", "list", "--namespace-id", NS2_ID, "--persist-to", "state"], cwd=root
    )
    assert other.returncode == 0, other.stderr
