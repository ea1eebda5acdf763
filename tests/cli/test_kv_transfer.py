"""`edgekv kv namespace export | import`: locally (in process) and against real central servers
on SQLite and PostgreSQL while writers write (child processes, the CLI as a user runs it)."""

from __future__ import annotations

import asyncio
import shlex
from pathlib import Path

import orjson
import pytest

import edgekv
from tests.api.conftest import start_central
from tests.cli.conftest import Run
from tests.exportload import Load, expected_at, populate, state_of
from tests.servers import EDGEKV, clean_env


def create(run: Run, title: str) -> list[str]:
    return ["--namespace-id", run("kv", "namespace", "create", title).json()["id"]]


def fill(run: Run, ns: list[str], tmp_path: Path) -> None:
    pairs = [
        {"key": "text", "value": "plain"},
        {"key": "bin", "value": "gIH+/w==", "base64": True, "metadata": {"m": [1, "é"]}},
        {"key": "ttl", "value": "x", "expiration_ttl": 3600},
        *({"key": f"k{i:05}", "value": f"v{i}"} for i in range(1500)),
    ]
    (tmp_path / "pairs.json").write_bytes(orjson.dumps(pairs))
    assert run("kv", "bulk", "put", "pairs.json", *ns).code == 0


def body(export: bytes) -> list[bytes]:
    """The entry lines and the trailer (the header names the namespace and the time)."""
    return export.splitlines()[1:]


def test_export_to_stdout_or_a_file_and_import_back(run: Run, tmp_path: Path) -> None:
    src = create(run, "source")
    fill(run, src, tmp_path)
    out = run("kv", "namespace", "export", *src)
    assert out.code == 0, out.stderr
    header = orjson.loads(out.stdout.splitlines()[0])
    assert header["namespace"] == {"id": src[1], "title": "source"}
    assert f"Exported 1503 key(s) of namespace {src[1]} at seq {header['seq']}." in out.stderr
    assert orjson.loads(out.stdout.splitlines()[-1]) == {"edgekv_export_end": True, "count": 1503}
    assert run("kv", "namespace", "export", *src, "--output", "file.ndjson").code == 0
    assert body((tmp_path / "file.ndjson").read_bytes()) == body(out.stdout)
    dst = create(run, "copy")
    done = run("kv", "namespace", "import", "file.ndjson", *dst)
    assert done.code == 0, done.stderr
    assert done.stderr.splitlines() == [f"Imported 1503 key(s) into namespace {dst[1]}."]
    assert body(run("kv", "namespace", "export", *dst).stdout) == body(out.stdout)
    # stdin, into a namespace that has keys: merged; and twice: the same data.
    third = create(run, "third")
    assert run("kv", "key", "put", "mine", "stays", *third).code == 0
    for _ in range(2):
        assert run("kv", "namespace", "import", "-", *third, input=out.stdout).code == 0
    merged = body(run("kv", "namespace", "export", *third).stdout)
    entries = sorted([b'{"key":"mine","value":"stays"}', *body(out.stdout)[:-1]])
    assert merged == [*entries, b'{"edgekv_export_end":true,"count":1504}']


def test_a_refused_file_writes_nothing(run: Run, tmp_path: Path) -> None:
    src = create(run, "source")
    fill(run, src, tmp_path)
    lines = run("kv", "namespace", "export", *src).stdout.splitlines(keepends=True)
    dst = create(run, "target")
    (tmp_path / "cut.ndjson").write_bytes(b"".join(lines[:-1]))
    refused = run("kv", "namespace", "import", "cut.ndjson", *dst)
    assert refused.code == 1
    assert refused.stderr == (
        f"error: cut.ndjson line {len(lines)}: the export is incomplete: no trailer after 1503"
        " entries; --partial imports what is there (0 entries written before it)\n"
    )
    bad = [*lines[:900], b'{"key": "k", "value": "v", "metadata": {"x": 1e999}}\n', *lines[900:]]
    (tmp_path / "bad.ndjson").write_bytes(b"".join(bad))
    refused = run("kv", "namespace", "import", "bad.ndjson", *dst)
    assert refused.code == 1 and refused.stderr.startswith("error: bad.ndjson line 901: ")
    assert "(0 entries written before it)" in refused.stderr
    refused = run("kv", "namespace", "import", "-", *dst, input=b"".join(bad))
    assert refused.stderr.startswith("error: stdin line 901: ")
    assert run("kv", "key", "list", *dst).json() == []  # nothing written
    partial = run("kv", "namespace", "import", "cut.ndjson", *dst, "--partial")
    assert partial.code == 0
    assert partial.stderr.splitlines() == [
        "cut.ndjson has no trailer (--partial): imported the entries it holds.",
        f"Imported 1503 key(s) into namespace {dst[1]}.",
    ]


def test_expired_entries_are_skipped_and_short_ones_kept(run: Run, tmp_path: Path) -> None:
    import time

    now = int(time.time())
    header = {"edgekv_export": 1, "namespace": {"id": "x" * 32, "title": "t"}, "seq": 7}
    items = [
        {"key": "gone", "value": "x", "expiration": now - 5},
        {"key": "soon", "value": "x", "expiration": now + 30},
        {"key": "kept", "value": "x"},
    ]
    data = b"\n".join(orjson.dumps(x) for x in [header, *items]) + b"\n"
    data += b'{"edgekv_export_end": true, "count": 3}\n'
    dst = create(run, "target")
    done = run("kv", "namespace", "import", "-", *dst, input=data)
    assert done.code == 0, done.stderr
    assert done.stderr.splitlines()[-1] == "skipped 1 expired"
    assert run("kv", "key", "list", *dst).json() == [
        {"name": "kept"},
        {"name": "soon", "expiration": now + 30},
    ]


def test_errors_are_one_line(run: Run, tmp_path: Path) -> None:
    ns = create(run, "x")
    assert run("kv", "namespace", "import", "missing.ndjson", *ns).stderr.startswith(
        "error: cannot read missing.ndjson:"
    )
    assert run("kv", "namespace", "export").code == 2  # which namespace?
    unknown = run("kv", "namespace", "export", "--namespace-id", "0" * 32)
    assert unknown.code == 1 and "not found" in unknown.stderr


# -- against a running server, under writes ------------------------------------------------------
async def _cli(env: dict[str, str], *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        EDGEKV, "kv", "namespace", *args, env=env, stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return err.decode()


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
async def test_export_under_writes_imports_exactly_at_its_seq(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    database = None
    if engine == "postgres":
        from tests import pgcluster

        database = await pgcluster.fresh_database(request.getfixturevalue("postgres_dsn"))
    with start_central(tmp_path / "data", database=database) as server:
        env = clean_env(
            {
                "EDGEKV_URL": server.url,
                "EDGEKV_API_TOKEN": server.token,
                "EDGEKV_ACCOUNT_ID": server.account,
            }
        )
        async with edgekv.open(server.url, token=server.token, account_id=server.account) as kv:
            src = await kv.create_namespace("source")
            await populate(src, 6000)
            load = Load(src).start()
            try:
                await load.until(30)
                before = load.done
                path = tmp_path / "export.ndjson"
                await _cli(env, "export", "--namespace-id", src.id, "--output", str(path))
                await load.until(load.done + 30)  # writes also after it
            finally:
                await load.stop()
            assert load.done > before
            seq = orjson.loads(path.read_bytes().splitlines()[0])["seq"]
            dst = await kv.create_namespace("copy")
            said = await _cli(env, "import", str(path), "--namespace-id", dst.id)
            expected = await expected_at(src, seq)
            assert f"Imported {len(expected)} key(s)" in said
            assert await state_of(dst) == expected
            assert await state_of(src) != expected


async def test_a_reader_that_goes_away_is_one_line(tmp_path: Path) -> None:
    env = clean_env()
    store = ["--persist-to", str(tmp_path / "state")]
    made = await asyncio.create_subprocess_exec(
        EDGEKV, "kv", "namespace", "create", "big", *store, env=env, stdout=asyncio.subprocess.PIPE
    )
    ns = orjson.loads((await made.communicate())[0])["id"]
    pairs = [{"key": f"k{i:05}", "value": "v" * 200} for i in range(5000)]  # ~1 MB of lines
    (tmp_path / "pairs.json").write_bytes(orjson.dumps(pairs))
    put = await asyncio.create_subprocess_exec(
        EDGEKV,
        "kv",
        "bulk",
        "put",
        str(tmp_path / "pairs.json"),
        "--namespace-id",
        ns,
        *store,
        env=env,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert await put.wait() == 0
    err_path = tmp_path / "stderr.txt"
    export = shlex.join([EDGEKV, "kv", "namespace", "export", "--namespace-id", ns, *store])
    shell = await asyncio.create_subprocess_shell(
        f"{export} 2>{shlex.quote(str(err_path))} | head -c 100 >/dev/null", env=env
    )
    assert await shell.wait() == 0  # head's status; the export's is in its stderr line
    err = await asyncio.to_thread(err_path.read_text)
    assert err == "error: stdout was closed before the export ended\n"
