"""`env.<BINDING>` of a worker (`WorkerKV`): the binding's JavaScript spellings as Cloudflare's
Python Workers write them (options dicts, camelCase keywords, `getWithMetadata`, JS-shaped
results) beside the Python ones, with the binding's exact errors. In process, in memory."""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

import edgekv
from edgekv import KVError, KVNamespace
from edgekv._models import ValueWithMetadata
from edgekv.workers.bindings import make_env
from edgekv.workers.config import KVBinding, WorkerConfig
from edgekv.workers.kv import JsListResult, JsObject, WorkerKV
from tests.workers.projects import NS_ID


@pytest.fixture
async def kv() -> AsyncIterator[WorkerKV]:
    async with edgekv.open() as client:
        await client.create_namespace("t", namespace_id=NS_ID)
        yield WorkerKV(client, NS_ID)


async def test_env_bindings_are_worker_kv_and_still_kv_namespaces() -> None:
    async with edgekv.open() as client:
        config = WorkerConfig(
            path=Path("wrangler.toml"),
            name="w",
            main=None,
            kv_namespaces=(KVBinding("KV", NS_ID),),
        )
        env = make_env(client, config)
        assert isinstance(env.KV, WorkerKV) and isinstance(env.KV, KVNamespace)
        assert env.KV.id == NS_ID


async def test_binding_methods_are_coroutine_functions(kv: WorkerKV) -> None:
    # Frameworks pick await-or-thread by this check: Starlette's background task runs a plain
    # callable in a thread, where `env.FOO.put` would only make a coroutine never awaited.
    for name in ("get", "getWithMetadata", "put", "list", "delete"):
        assert inspect.iscoroutinefunction(getattr(kv, name)), name


async def test_get_takes_a_type_string_an_options_dict_or_keywords(kv: WorkerKV) -> None:
    await kv.put("j", '{"a": {"b": [1, {"c": 2}]}}')
    assert await kv.get("j") == '{"a": {"b": [1, {"c": 2}]}}'
    for value in (
        await kv.get("j", "json"),
        await kv.get("j", {"type": "json", "cacheTtl": 60}),
        await kv.get("j", type="json", cacheTtl=60),
        await kv.get("j", type="json", cache_ttl=60),
    ):
        assert value == {"a": {"b": [1, {"c": 2}]}}
        assert isinstance(value, JsObject) and value.a.b[1].c == 2  # keys as attributes
    assert await kv.get("j", {"type": "bytes"}) == b'{"a": {"b": [1, {"c": 2}]}}'
    assert await kv.get("j", None) == await kv.get("j", {}) == await kv.get("j", type=None)
    assert await kv.get("missing", {"type": "json"}) is None


async def test_javascript_options_give_the_bindings_exact_errors(kv: WorkerKV) -> None:
    with pytest.raises(KVError) as caught:
        await kv.get("k", {"cacheTtl": 5})
    assert (
        str(caught.value)
        == "KV GET failed: 400 Invalid cache_ttl of 5. Cache TTL must be at least 60."
    )
    with pytest.raises(KVError) as caught:
        await kv.put("k", "v", expirationTtl=5)
    assert str(caught.value) == (
        "KV PUT failed: 400 Invalid expiration_ttl of 5. Expiration TTL must be at least 60."
    )
    with pytest.raises(KVError) as caught:
        await kv.list({"limit": 1001})
    assert "Invalid key_count_limit of 1001" in str(caught.value)
    await kv.put("k", "v")
    with pytest.raises(TypeError, match="Unknown response type"):
        await kv.get("k", {"type": "blob"})


async def test_misspelled_or_doubled_options_are_a_clear_type_error(kv: WorkerKV) -> None:
    # An ignored typo would silently drop an expiration: refuse it instead.
    with pytest.raises(TypeError) as caught:
        await kv.put("k", "v", {"expirationTTL": 60})
    assert str(caught.value) == (
        "KV put(): unknown option 'expirationTTL' (options: expiration, expirationTtl, metadata)"
    )
    with pytest.raises(TypeError, match="unexpected keyword argument 'expiration_tll'"):
        await kv.put("k", "v", expiration_tll=60)
    with pytest.raises(TypeError, match="option 'cacheTtl' given twice"):
        await kv.get("k", {"cacheTtl": 60}, cacheTtl=120)
    with pytest.raises(TypeError, match=r"KV list\(\) takes an options dict, not str"):
        await kv.list("prefix")
    pending = kv.put("k", "v", {"bad": 1})  # refused when awaited, as a rejected promise is
    with pytest.raises(TypeError, match="unknown option 'bad'"):
        await pending
    assert await kv.get("k") is None  # nothing was written by the refused calls


async def test_put_with_options_dict_keywords_or_none(kv: WorkerKV) -> None:
    await kv.put("a", "1", {"expirationTtl": 600, "metadata": {"m": 1}})
    await kv.put("b", "2", expirationTtl=600, metadata={"m": 2})
    await kv.put("c", "3", None)
    await kv.put("d", "4", expiration_ttl=600)  # the Python spelling, on the same object
    listed = await kv.list()
    assert [(k.name, k.metadata, k.expiration is not None) for k in listed.keys] == [
        ("a", {"m": 1}, True),
        ("b", {"m": 2}, True),
        ("c", None, False),
        ("d", None, True),
    ]


async def test_get_with_metadata_in_both_spellings(kv: WorkerKV) -> None:
    await kv.put("k", '{"x": 1}', metadata={"tag": {"deep": True}})
    js = await kv.getWithMetadata("k")
    assert js == {"value": '{"x": 1}', "metadata": {"tag": {"deep": True}}, "cacheStatus": None}
    assert js.value == '{"x": 1}' and js.metadata.tag.deep is True
    typed = await kv.getWithMetadata("k", {"type": "json"})
    assert typed["value"].x == 1
    assert await kv.getWithMetadata("nope") == {
        "value": None,
        "metadata": None,
        "cacheStatus": None,
    }
    bulk = await kv.getWithMetadata(["k", "nope"], type="json")
    assert bulk == {"k": {"value": {"x": 1}, "metadata": {"tag": {"deep": True}}}, "nope": None}
    python = await kv.get_with_metadata("k")
    assert isinstance(python, ValueWithMetadata) and python.metadata == {"tag": {"deep": True}}


async def test_list_results_have_both_shapes(kv: WorkerKV) -> None:
    for i in range(3):
        await kv.put(f"p:{i}", "v", metadata={"i": i} if i else None)
    page = await kv.list({"prefix": "p:", "limit": 2})
    assert isinstance(page, JsListResult) and isinstance(page, dict)
    # Cloudflare's Python Workers: a dict of the JS object.
    assert [k["name"] for k in page["keys"]] == ["p:0", "p:1"]
    assert page["list_complete"] is False and page.get("cursor") == page.cursor
    assert page["keys"][0].get("metadata") is None and page["keys"][1]["metadata"] == {"i": 1}
    # edgekv's ListResult attributes on the same object.
    assert [k.name for k in page.keys] == ["p:0", "p:1"] and page.list_complete is False
    rest = await kv.list(prefix="p:", cursor=page["cursor"])
    assert [k.name for k in rest.keys] == ["p:2"]
    assert rest.cursor is None and "cursor" not in rest and rest.cache_status is None
    assert rest.to_dict() == {
        "keys": [{"name": "p:2", "metadata": {"i": 2}}],
        "list_complete": True,
    }
    assert json.loads(orjson.dumps(rest)) == {
        "keys": [{"name": "p:2", "metadata": {"i": 2}}],
        "list_complete": True,
        "cacheStatus": None,
    }
    assert (await kv.list(None))["list_complete"] is True
    assert rest.to_py() is rest
