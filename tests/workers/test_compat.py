"""The top-level modules a Cloudflare Python Worker imports (`workers`, `workers.asgi`, `asgi`)
exist only in a worker process, never shadow the user's own, and what needs Cloudflare's
JavaScript runtime fails with one line. Each case runs in a fresh interpreter (sys.path and
sys.modules are what is under test)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.workers.processes import run_cli
from tests.workers.projects import write_project


def python(code: str, *, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_workers_is_edgekvs_objects_after_install_and_absent_before(tmp_path: Path) -> None:
    result = python(
        """
        import importlib.util
        import edgekv.workers
        assert importlib.util.find_spec("workers") is None, "importable before install"
        from edgekv.workers import compat
        compat.install()
        compat.install()  # idempotent
        import workers, workers.asgi, asgi
        from workers import Request, Response, WorkerEntrypoint, handler
        from workers import asgi as from_workers
        import edgekv.workers.asgi
        assert Response is edgekv.workers.Response and Request is edgekv.workers.Request
        assert WorkerEntrypoint is edgekv.workers.WorkerEntrypoint
        assert workers.asgi is from_workers is asgi is edgekv.workers.asgi
        assert handler(len) is len
        print("ok")
        """,
        cwd=tmp_path,
    )
    assert result.stdout == "ok\n", result.stderr


def test_a_users_own_workers_package_wins(tmp_path: Path) -> None:
    (tmp_path / "workers").mkdir()
    (tmp_path / "workers" / "__init__.py").write_text("MINE = True\n")
    result = python(
        """
        import sys
        sys.path.insert(0, ".")
        from edgekv.workers import compat
        compat.install()
        import workers
        print(workers.MINE)
        """,
        cwd=tmp_path,
    )
    assert result.stdout == "True\n", result.stderr


def test_cloudflares_sdk_package_is_put_behind_edgekvs(tmp_path: Path) -> None:
    # workers-runtime-sdk (installed for type checking) runs only inside Pyodide.
    site = tmp_path / "site"
    (site / "workers").mkdir(parents=True)
    (site / "workers" / "__init__.py").write_text("import js\n")
    (site / "workers_runtime_sdk-1.9.5.dist-info").mkdir()
    result = python(
        f"""
        import sys
        sys.path.append({str(site)!r})
        from edgekv.workers import compat
        compat.install()
        from workers import Response
        import edgekv.workers
        print(Response is edgekv.workers.Response)
        """,
        cwd=tmp_path,
    )
    assert result.stdout == "True\n", result.stderr


def test_what_needs_the_javascript_runtime_says_so_in_one_line(tmp_path: Path) -> None:
    result = python(
        """
        from edgekv.workers import compat
        compat.install()
        for statement in (
            "from js import Response",
            "import pyodide.ffi",
            "from pyodide.ffi import to_js",
            "from workers import DurableObject",
            "from workers import fetch",
        ):
            try:
                exec(statement)
            except ImportError as exc:
                assert isinstance(exc, compat.UnsupportedImport), statement
                print(exc)
        import workers
        assert not hasattr(workers, "no_such_name")
        """,
        cwd=tmp_path,
    )
    lines = result.stdout.splitlines()
    assert len(lines) == 5, result.stderr
    assert lines[0].startswith("`js` is the JavaScript runtime of Cloudflare's Pyodide-based")
    assert lines[1] == lines[2] and lines[1].startswith("`pyodide` (pyodide.ffi, JsProxy, to_js)")
    assert lines[3].startswith("workers.DurableObject: Durable Objects are not available")
    assert lines[4].startswith("workers.fetch: outbound fetch() is not available")
    assert all(line.endswith('(docs/workers.md, "Cloudflare\'s Python Workers")') for line in lines)


def test_a_worker_importing_js_stops_dev_with_one_line(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        """
        from workers import WorkerEntrypoint
        from js import Response


        class Default(WorkerEntrypoint):
            async def fetch(self, request):
                return Response.new("hello")
        """,
    )
    result = run_cli(["dev", "--persist-to", "state", "--port", "1"], cwd=tmp_path)
    assert result.returncode == 1
    err = result.stderr.decode()
    assert "Traceback" not in err
    assert err.splitlines() == [
        "error: src/worker.py:2: `js` is the JavaScript runtime of Cloudflare's Pyodide-based "
        "workers, which edgekv does not have: edgekv runs Python workers on CPython; use "
        '`from workers import Response` (docs/workers.md, "Cloudflare\'s Python Workers")'
    ]
