"""The sync twin: the same API, blocking."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import pytest

import edgekv
import edgekv.sync


def test_sync_round_trip(tmp_path: Path) -> None:
    with edgekv.sync.open(tmp_path / "data") as kv:
        todo = kv.create_namespace("My tasks")
        todo.put("to-do:123", "buy milk", metadata={"done": False})
        assert todo.get("to-do:123") == "buy milk"
        assert todo.get("to-do:123", "bytes") == b"buy milk"
        assert b"".join(todo.get("to-do:123", "stream")) == b"buy milk"
        result = todo.get_with_metadata("to-do:123")
        assert (result.value, result.metadata) == ("buy milk", {"done": False})
        todo.put("file", io.BytesIO(b"from a file"))
        todo.put_many([(f"k{i}", str(i)) for i in range(2500)])
        assert todo.get(["k1", "k2", "nope"]) == {"k1": "1", "k2": "2", "nope": None}
        assert len(list(todo.iter_keys(prefix="k"))) == 2500
        page = todo.list(prefix="k", limit=10)
        assert len(page.keys) == 10 and not page.list_complete
        todo.delete_many([f"k{i}" for i in range(2500)])
        todo.delete("file")
        assert [k.name for k in todo.list().keys] == ["to-do:123"]
        assert [n.title for n in kv.list_namespaces()] == ["My tasks"]
        kv.rename_namespace(todo.id, "Tasks")
        assert kv.get_namespace(todo.id) == edgekv.Namespace(todo.id, "Tasks")
        assert kv.namespace(todo.id).get("to-do:123") == "buy milk"
        kv.delete_namespace(todo.id)
        assert kv.list_namespaces() == []


def test_sync_errors_are_the_same(tmp_path: Path) -> None:
    with edgekv.sync.open() as kv:
        ns = kv.create_namespace("n")
        with pytest.raises(edgekv.KVTypeError, match=r"^Key name cannot be empty\.$"):
            ns.put("", "v")
        with pytest.raises(edgekv.KVError) as info:
            ns.put("k", "v", expiration_ttl=5)
        assert info.value.status == 400


def test_close_is_idempotent() -> None:
    kv = edgekv.sync.open()
    kv.create_namespace("n")
    kv.close()
    kv.close()


def test_sync_versions_and_changes() -> None:
    """The sync twin: conditional writes, and the feed as a plain (blocking) iterator."""
    with edgekv.sync.open() as kv:
        ns = kv.create_namespace("sync feed")
        ns.put("k", "1", if_none_match="*")
        version = ns.get_with_metadata("k").version
        with pytest.raises(edgekv.KVConflict):
            ns.put("k", "x", if_match="nope")
        ns.put("k", "2", if_match=version)
        got: list[edgekv.Change] = []

        def follow() -> None:
            for change in ns.changes():
                got.append(change)
                if len(got) == 2:
                    break  # closes the iterator: its long poll ends with it

        thread = threading.Thread(target=follow)
        thread.start()
        time.sleep(0.3)  # it starts at the head
        ns.put("a", "1")
        ns.delete("a")
        thread.join(10)
        assert not thread.is_alive()
        assert [(c.op, c.key) for c in got] == [("put", "a"), ("delete", "a")]
        ns.delete("k", if_match=ns.get_with_metadata("k").version)
        assert ns.get("k") is None
