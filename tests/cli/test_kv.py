"""`edgekv kv ...` on the local store (--persist-to), every command, JSON round trips, bad input.
In process through click's CliRunner; tests/cli/test_kv_remote.py runs them against a server."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

from tests.cli.conftest import Run

NS_ID = "06779da6940b431db6e566b4846d64db"


@pytest.fixture
def ns(run: Run) -> list[str]:
    """A fresh namespace: the options that select it."""
    created = run("kv", "namespace", "create", "My tasks")
    assert created.code == 0, created.stderr
    return ["--namespace-id", created.json()["id"]]


# -- namespaces ----------------------------------------------------------------------------------
def test_namespace_create_list_rename_delete(run: Run) -> None:
    created = run("kv", "namespace", "create", "My tasks")
    assert created.code == 0
    info = created.json()
    assert info["title"] == "My tasks" and len(info["id"]) == 32
    assert f'{{ binding = "MY_TASKS", id = "{info["id"]}" }}' in created.stderr

    assert run("kv", "namespace", "list").json() == [info]
    renamed = run("kv", "namespace", "rename", "--namespace-id", info["id"], "--new-name", "Done")
    assert renamed.json() == {"id": info["id"], "title": "Done"}
    assert run("kv", "namespace", "list").json() == [{"id": info["id"], "title": "Done"}]

    assert run("kv", "namespace", "delete", "--namespace-id", info["id"]).code == 0
    assert run("kv", "namespace", "list").json() == []
    again = run("kv", "namespace", "delete", "--namespace-id", info["id"])
    assert again.code == 1 and f"namespace {info['id']} not found" in again.stderr


def test_namespace_errors(run: Run) -> None:
    assert run("kv", "namespace", "create", "dup").code == 0
    dup = run("kv", "namespace", "create", "dup")
    assert dup.code == 1 and "already exists" in dup.stderr
    assert run("kv", "namespace", "create", " ").code == 1
    missing = run("kv", "namespace", "rename", "--namespace-id", "0" * 32)
    assert missing.code == 2 and "Missing option '--new-name'" in missing.stderr


def test_persist_to_chooses_the_folder(run: Run, tmp_path: Path) -> None:
    assert run("kv", "namespace", "create", "a", "--persist-to", "elsewhere").code == 0
    assert run("kv", "namespace", "list").json() == []
    assert [
        n["title"] for n in run("kv", "namespace", "list", "--persist-to", "elsewhere").json()
    ] == ["a"]
    assert (tmp_path / "elsewhere").is_dir()


# -- keys ----------------------------------------------------------------------------------------
def test_key_put_get_list_delete(run: Run, ns: list[str]) -> None:
    assert run("kv", "key", "put", "to-do:1", "buy milk", *ns).code == 0
    got = run("kv", "key", "get", "to-do:1", *ns)
    assert (got.code, got.stdout) == (0, b"buy milk")  # raw, no newline
    assert run("kv", "key", "get", "to-do:1", *ns, "--text").stdout == b"buy milk\n"
    assert run("kv", "key", "list", *ns).json() == [{"name": "to-do:1"}]
    assert run("kv", "key", "delete", "to-do:1", *ns).code == 0
    missing = run("kv", "key", "get", "to-do:1", *ns)
    assert missing.code == 1 and missing.stderr == "error: key 'to-do:1' not found\n"
    assert run("kv", "key", "delete", "to-do:1", *ns).code == 0  # missing: not an error


def test_key_put_options(run: Run, ns: list[str], tmp_path: Path) -> None:
    binary = bytes(range(256)) * 10
    (tmp_path / "value.bin").write_bytes(binary)
    assert run("kv", "key", "put", "bin", "--path", "value.bin", *ns).code == 0
    assert run("kv", "key", "get", "bin", *ns).stdout == binary

    before = int(time.time())
    put = run("kv", "key", "put", "ttl", "x", *ns, "--ttl", "120", "--metadata", '{"k": "é"}')
    assert put.code == 0
    at = int(time.time()) + 3600
    assert run("kv", "key", "put", "abs", "y", *ns, "--expiration", str(at)).code == 0
    listed = {k["name"]: k for k in run("kv", "key", "list", *ns).json()}
    assert listed["bin"] == {"name": "bin"}
    assert listed["abs"] == {"name": "abs", "expiration": at}
    assert before + 120 <= listed["ttl"]["expiration"] <= int(time.time()) + 120
    assert listed["ttl"]["metadata"] == {"k": "é"}


def test_key_list_prefix_and_every_page(run: Run, ns: list[str], tmp_path: Path) -> None:
    pairs = [{"key": f"user:{i:04}", "value": "v"} for i in range(1500)] + [
        {"key": "other", "value": "v"}
    ]
    (tmp_path / "pairs.json").write_text(json.dumps(pairs))
    assert run("kv", "bulk", "put", "pairs.json", *ns).code == 0
    users = run("kv", "key", "list", *ns, "--prefix", "user:").json()
    assert [k["name"] for k in users] == [f"user:{i:04}" for i in range(1500)]
    assert len(run("kv", "key", "list", *ns).json()) == 1501


def test_binding_resolves_through_wrangler_toml_and_is_created_on_first_use(
    run: Run, tmp_path: Path
) -> None:
    (tmp_path / "wrangler.toml").write_text(
        f'name = "todo"\nkv_namespaces = [{{ binding = "TODO", id = "{NS_ID}" }}]\n'
    )
    assert run("kv", "key", "put", "k", "v", "--binding", "TODO").code == 0
    assert run("kv", "namespace", "list").json() == [{"id": NS_ID, "title": "todo-TODO"}]
    assert run("kv", "key", "get", "k", "--namespace-id", NS_ID).stdout == b"v"
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "other.toml").write_text(
        f'kv_namespaces = [{{ binding = "SAME", id = "{NS_ID}" }}]\n'
    )
    by_config = run("kv", "key", "get", "k", "--binding", "SAME", "--config", "conf/other.toml")
    assert by_config.stdout == b"v"


# -- bulk ----------------------------------------------------------------------------------------
def test_bulk_put_get_and_the_list_to_delete_round_trip(
    run: Run, ns: list[str], tmp_path: Path
) -> None:
    pairs = [
        {"key": "a", "value": "1"},
        {"key": "b", "value": base64.b64encode(b"\x00\xff").decode(), "base64": True},
        {"key": "c", "value": "3", "expiration_ttl": 600, "metadata": {"tag": ["x", 1]}},
        {"key": "ünï", "value": "ü"},
    ]
    (tmp_path / "pairs.json").write_text(json.dumps(pairs))
    put = run("kv", "bulk", "put", "pairs.json", *ns)
    assert put.code == 0 and "Wrote 4 key(s)." in put.stderr
    assert run("kv", "key", "get", "b", *ns).stdout == b"\x00\xff"

    (tmp_path / "keys.json").write_text(json.dumps(["a", "c", "ünï", "zzz", "a"]))
    got = run("kv", "bulk", "get", "keys.json", *ns)
    assert got.json() == {"a": "1", "c": "3", "ünï": "ü", "zzz": None}
    assert list(got.json()) == ["a", "c", "ünï", "zzz"]

    listed = run("kv", "key", "list", *ns)
    assert [k["name"] for k in listed.json()] == ["a", "b", "c", "ünï"]
    (tmp_path / "listed.json").write_bytes(listed.stdout)  # what `key list` printed, as is
    # ... is what `bulk get` and `bulk delete` take
    assert list(run("kv", "bulk", "get", "listed.json", *ns).json()) == ["a", "b", "c", "ünï"]
    deleted = run("kv", "bulk", "delete", "listed.json", *ns)
    assert deleted.code == 0 and "Deleted 4 key(s)." in deleted.stderr
    assert run("kv", "key", "list", *ns).json() == []


def test_bulk_put_goes_in_batches_of_10000(run: Run, ns: list[str], tmp_path: Path) -> None:
    pairs = [{"key": f"k{i:05}", "value": str(i)} for i in range(10_005)]
    (tmp_path / "pairs.json").write_text(json.dumps(pairs))
    assert run("kv", "bulk", "put", "pairs.json", *ns).code == 0
    assert len(run("kv", "key", "list", *ns).json()) == 10_005
    names = json.dumps([p["key"] for p in pairs])
    assert run("kv", "bulk", "delete", "-", *ns, input=names).code == 0  # '-' is stdin
    assert run("kv", "key", "list", *ns).json() == []


# -- bad input: one line, non-zero -----------------------------------------------------------------
def test_bad_key_and_option_values(run: Run, ns: list[str]) -> None:
    empty = run("kv", "key", "put", "", "v", *ns)
    assert (empty.code, empty.stderr) == (1, "error: Key name cannot be empty.\n")
    assert run("kv", "key", "get", "", *ns).code == 1
    short = run("kv", "key", "put", "k", "v", *ns, "--ttl", "59")
    assert short.stderr == (
        "error: KV PUT failed: 400 Invalid expiration_ttl of 59. "
        "Expiration TTL must be at least 60.\n"
    )
    past = run("kv", "key", "put", "k", "v", *ns, "--expiration", "1000")
    assert past.code == 1 and "Invalid expiration of 1000" in past.stderr
    meta = run("kv", "key", "put", "k", "v", *ns, "--metadata", "{nope")
    assert meta.code == 1 and "--metadata is not valid JSON" in meta.stderr
    big = run("kv", "key", "put", "k", "v", *ns, "--metadata", json.dumps("x" * 2000))
    assert big.code == 1 and "Metadata length of 2002 exceeds limit of 1024" in big.stderr
    assert run("kv", "key", "put", "k", "v", *ns, "--ttl", "soon").code == 2
    assert run("kv", "key", "list", *ns).json() == []  # nothing was written


def test_missing_or_conflicting_options(run: Run, ns: list[str]) -> None:
    neither = run("kv", "key", "get", "k")
    assert neither.code == 2
    assert neither.stderr.startswith("error: one of --namespace-id or --binding is required")
    both = run("kv", "key", "get", "k", *ns, "--binding", "X")
    assert both.code == 2 and "not both" in both.stderr
    no_value = run("kv", "key", "put", "k", *ns)
    assert no_value.code == 2 and "either as VALUE or as --path FILE" in no_value.stderr
    two_values = run("kv", "key", "put", "k", "v", *ns, "--path", "f")
    assert two_values.code == 2
    assert run("kv", "key", "frobnicate").code == 2
    assert run("kv", "nope").stderr.startswith("error: No such command 'nope'.")


def test_unknown_namespace_and_binding(run: Run, tmp_path: Path) -> None:
    unknown = run("kv", "key", "get", "k", "--namespace-id", "f" * 32)
    assert unknown.code == 1 and f"namespace {'f' * 32} not found" in unknown.stderr
    assert run("kv", "key", "list", "--namespace-id", "f" * 32).code == 1
    no_config = run("kv", "key", "get", "k", "--binding", "TODO")
    assert no_config.code == 1 and "config file wrangler.toml not found" in no_config.stderr
    (tmp_path / "wrangler.toml").write_text('kv_namespaces = [{ binding = "A", id = "x" }]\n')
    wrong = run("kv", "key", "get", "k", "--binding", "TODO")
    assert wrong.stderr == "error: wrangler.toml: no KV binding named 'TODO' (bindings: A)\n"


def test_unreadable_and_malformed_files(run: Run, ns: list[str], tmp_path: Path) -> None:
    missing = run("kv", "bulk", "put", "nope.json", *ns)
    assert missing.stderr == "error: cannot read nope.json: No such file or directory\n"
    assert run("kv", "key", "put", "k", *ns, "--path", "nope.bin").code == 1
    (tmp_path / "dir.json").mkdir()
    assert run("kv", "bulk", "delete", "dir.json", *ns).code == 1
    (tmp_path / "bad.json").write_text("[{")
    bad = run("kv", "bulk", "put", "bad.json", *ns)
    assert bad.code == 1 and bad.stderr.startswith("error: bad.json: invalid JSON:")

    cases = {
        '{"key": "a"}': "expected a JSON array",
        '[{"key": "a", "value": 1}]': "pairs.json[0] (key 'a'): \"value\" must be a string",
        '[{"value": "x"}]': 'pairs.json[0]: "key" must be a string',
        '[{"key": "ok", "value": "x"}, {"key": "", "value": "x"}]': (
            "pairs.json[1] (key ''): Key name cannot be empty."
        ),
        '[{"key": "a", "value": "x", "expiration_ttl": 10}]': "Invalid expiration_ttl of 10",
        '[{"key": "a", "value": "!!", "base64": true}]': "invalid base64 value",
        "[3]": 'expected an object {"key": ..., "value": ...}',
    }
    for text, message in cases.items():
        (tmp_path / "pairs.json").write_text(text)
        result = run("kv", "bulk", "put", "pairs.json", *ns)
        assert result.code == 1 and message in result.stderr, (text, result.stderr)
    assert run("kv", "key", "list", *ns).json() == []  # checked before the first write

    (tmp_path / "names.json").write_text('["a", {"nom": "b"}]')
    wrong = run("kv", "bulk", "delete", "names.json", *ns)
    assert wrong.code == 1 and "names.json[1]: expected a key name" in wrong.stderr
    (tmp_path / "names.json").write_text('{"a": 1}')
    assert run("kv", "bulk", "get", "names.json", *ns).code == 1


def test_put_says_byte_or_bytes(run: Run, ns: list[str]) -> None:
    assert run("kv", "key", "put", "one", "x", *ns).stderr == "Wrote 1 byte to key 'one'.\n"
    assert run("kv", "key", "put", "two", "xy", *ns).stderr == "Wrote 2 bytes to key 'two'.\n"
    assert run("kv", "key", "put", "none", "", *ns).stderr == "Wrote 0 bytes to key 'none'.\n"


def test_progress_on_a_terminal_hides_the_cursor_once(tmp_path: Path) -> None:
    """With stderr on a terminal, bulk commands draw a bar: the cursor is hidden once, every
    redraw only returns to the line's start, and the cursor is shown again at the end."""
    import os
    import pty
    import subprocess

    from tests.servers import EDGEKV

    pairs = [{"key": f"k{i}", "value": "v"} for i in range(25_000)]  # three batches
    (tmp_path / "pairs.json").write_text(json.dumps(pairs))
    (tmp_path / "wrangler.toml").write_text(
        f'kv_namespaces = [{{ binding = "B", id = "{NS_ID}" }}]\n'
    )
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen(
            [EDGEKV, "kv", "bulk", "put", "pairs.json", "--binding", "B"],
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=follower,
        )
        os.close(follower)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the command exited and closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        assert proc.wait(60) == 0
    finally:
        os.close(leader)
    text = shown.decode()
    assert text.count("\x1b[?25l") == 1 and text.count("\x1b[?25h") == 1
    assert text.index("\x1b[?25l") < text.index("25000/25000") < text.index("\x1b[?25h")
    assert text.count("\rWriting") == 4  # the empty bar, then one redraw per batch
    assert text.rstrip().endswith("Wrote 25000 key(s).")
