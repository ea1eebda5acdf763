"""The official JavaScript SDK (`cloudflare` v7 on npm) against a real `edgekv serve`: every
call of docs/rest-api.md's JavaScript section, run by node."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import js_sdk
from tests.api.conftest import Central

pytestmark = pytest.mark.skipif(not js_sdk.available(), reason="node/npm not installed")

# The calls as docs/rest-api.md shows them (keep the two in step).
SCRIPT = """
const ns = await client.kv.namespaces.create({ account_id: ACCOUNT, title: "js sdk tasks" });
await client.kv.namespaces.values.update("to-do:123", {
  account_id: ACCOUNT, namespace_id: ns.id,
  value: "buy milk", metadata: JSON.stringify({ done: false }), expiration_ttl: 600,
});
// An object is sent as form fields metadata[done]=false, which is not metadata: no metadata.
await client.kv.namespaces.values.update("object-metadata", {
  account_id: ACCOUNT, namespace_id: ns.id, value: "x", metadata: { done: false },
});
const ignored = await client.kv.namespaces.metadata.get("object-metadata", {
  account_id: ACCOUNT, namespace_id: ns.id,
});
const value = await client.kv.namespaces.values.get("to-do:123", {
  account_id: ACCOUNT, namespace_id: ns.id,
});
const metadata = await client.kv.namespaces.metadata.get("to-do:123", {
  account_id: ACCOUNT, namespace_id: ns.id,
});
const keys = [];
for await (const key of client.kv.namespaces.keys.list(ns.id, {
  account_id: ACCOUNT, prefix: "to-do:",
})) keys.push(key);
await client.kv.namespaces.bulkUpdate(ns.id, {
  account_id: ACCOUNT, body: [{ key: "a", value: "1" }, { key: "b", value: "2" }],
});
const bulk = await client.kv.namespaces.bulkGet(ns.id, {
  account_id: ACCOUNT, keys: ["a", "b", "missing"],
});
await client.kv.namespaces.bulkDelete(ns.id, {
  account_id: ACCOUNT, body: ["a", "object-metadata"],
});
await client.kv.namespaces.values.delete("to-do:123", {
  account_id: ACCOUNT, namespace_id: ns.id,
});
const after = [];
for await (const key of client.kv.namespaces.keys.list(ns.id, { account_id: ACCOUNT })) {
  after.push(key.name);
}
const namespaces = [];
for await (const n of client.kv.namespaces.list({ account_id: ACCOUNT })) namespaces.push(n.title);
console.log(JSON.stringify({
  id: ns.id, text: await value.text(), expiration: value.headers.get("expiration"),
  metadata, ignored, keys, bulk, after, namespaces,
}));
"""


def test_js_sdk_calls(shared_central: Central, tmp_path: Path) -> None:
    out = js_sdk.run_script(
        SCRIPT, shared_central.api, shared_central.token, shared_central.account, tmp_path
    )
    assert out["text"] == "buy milk" and int(out["expiration"]) > 0
    assert out["metadata"] == {"done": False}
    assert out["ignored"] is None
    assert [k["name"] for k in out["keys"]] == ["to-do:123"]
    assert out["keys"][0]["metadata"] == {"done": False}
    assert out["bulk"]["values"] == {"a": "1", "b": "2", "missing": None}
    assert out["after"] == ["b"]
    assert "js sdk tasks" in out["namespaces"]
