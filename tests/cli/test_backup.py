"""`edgekv backup` / `edgekv restore`: a copy of a running server's SQLite store taken under
write load is exactly the store as of one commit (checked against the change feed), and
restores into a store that serves it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import edgekv
from tests.api.conftest import start_central
from tests.cli.conftest import Run
from tests.exportload import Load, expected_at, populate, state_of
from tests.servers import EDGEKV, clean_env


async def _run(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        EDGEKV, *args, env=clean_env(), stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    return proc.returncode or 0, err.decode()


async def test_backup_of_a_running_server_under_writes_is_one_commit(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with start_central(data) as server:
        async with edgekv.open(server.url, token=server.token, account_id=server.account) as kv:
            src = await kv.create_namespace("source")
            await populate(src, 4000)
            load = Load(src).start()
            try:
                await load.until(30)
                before = load.done
                code, said = await _run("backup", "--data", str(data), str(tmp_path / "b.db"))
                assert code == 0, said
                await load.until(load.done + 30)  # the server kept taking writes
            finally:
                await load.stop()
            assert load.done > before
            assert said.startswith("Backed up 1 namespace(s), ") and "b.db" in said
            # No temporary file left, no -wal beside the backup: one self-contained file.
            names = await asyncio.to_thread(lambda: [p.name for p in tmp_path.iterdir()])
            assert [n for n in names if n.startswith((".b.db", "b.db"))] == ["b.db"]
            restored = tmp_path / "restored"
            code, said = await _run("restore", str(tmp_path / "b.db"), "--data", str(restored))
            assert code == 0, said
            async with edgekv.open(restored) as copy:
                assert await copy.store.account_exists(server.account)
                ns = copy.namespace(src.id)
                async with ns.export() as snapshot:
                    seq = snapshot.seq
                state = await state_of(ns)
            assert seq > 0
            assert state == await expected_at(src, seq)
            assert state != await state_of(src)  # later writes are not in it


def test_refusals_are_one_line(run: Run, tmp_path: Path) -> None:
    missing = run("backup", "--data", "nowhere", "out.db")
    assert missing.code == 1 and "no edgekv store in nowhere" in missing.stderr
    assert run("kv", "namespace", "create", "x").code == 0  # a local store in .edgekv
    assert run("backup", "out.db").code == 0
    again = run("backup", "out.db")
    assert again.code == 1 and "out.db exists already" in again.stderr
    pg = run("backup", "--database", "postgresql://u@h/db", "x.db")
    assert pg.code == 1 and "pg_dump --format=custom" in pg.stderr
    taken = run("restore", "out.db")
    assert taken.code == 1 and "already holds a store" in taken.stderr
    assert run("restore", "out.db", "--force").code == 0
    assert run("restore", "nothing.db", "--data", "d").stderr.startswith("error: no such backup")
    (tmp_path / "junk.db").write_bytes(b"not a database at all" * 100)
    junk = run("restore", "junk.db", "--data", "d")
    assert junk.code == 1 and "junk.db" in junk.stderr
    assert not (tmp_path / "d" / "edgekv.sqlite3").exists()
