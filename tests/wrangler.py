"""Running the real `wrangler` CLI against a server in tests.

wrangler is installed once with npm into `tests/.node/` (ignored by git through the
`.gitignore` written there), pinned to a major version; installs from several test processes
at once are serialised by a file lock. Tests skip only when `node`/`npm` are absent.

    wrangler = Wrangler(api_base, token, account, workdir)
    wrangler.json("kv", "namespace", "list")
    wrangler.run("kv", "key", "put", "k", "v", "--namespace-id", ns, "--remote")
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["NODE_DIR", "Wrangler", "available", "ensure_installed"]

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / "tests" / ".node"
PACKAGE = "wrangler@4"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def available() -> bool:
    return shutil.which("node") is not None and shutil.which("npm") is not None


def executable() -> Path:
    return NODE_DIR / "node_modules" / ".bin" / "wrangler"


def ensure_installed(timeout: float = 900) -> Path:
    """The wrangler executable, installing it first if needed (npm registry)."""
    NODE_DIR.mkdir(parents=True, exist_ok=True)
    (NODE_DIR / ".gitignore").write_text("*\n")
    with (NODE_DIR / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not executable().exists():
            package_json = NODE_DIR / "package.json"
            if not package_json.exists():
                package_json.write_text('{"private": true}\n')
            subprocess.run(
                ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", PACKAGE],
                cwd=NODE_DIR,
                check=True,
                timeout=timeout,
                capture_output=True,
            )
    return executable()


class Wrangler:
    """wrangler pointed at `api_base` (…/client/v4), run in `workdir` with its own config
    home, no metrics, no banner, non-interactive. `account=None` leaves CLOUDFLARE_ACCOUNT_ID
    unset, so wrangler asks `GET /memberships` for it."""

    def __init__(self, api_base: str, token: str, account: str | None, workdir: Path) -> None:
        self.bin = ensure_installed()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CLOUDFLARE_", "CF_", "WRANGLER_", "EDGEKV_"))
        }
        env.update(
            CLOUDFLARE_API_BASE_URL=api_base,
            CLOUDFLARE_API_TOKEN=token,
            WRANGLER_SEND_METRICS="false",
            WRANGLER_HIDE_BANNER="true",
            CI="true",
            NO_COLOR="1",
            FORCE_COLOR="0",
            XDG_CONFIG_HOME=str(workdir / ".config"),
            HOME=str(workdir),
        )
        if account is not None:
            env["CLOUDFLARE_ACCOUNT_ID"] = account
        self.env = env

    def run(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.bin), *args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        result.stdout = _ANSI.sub("", result.stdout)
        result.stderr = _ANSI.sub("", result.stderr)
        if check and result.returncode != 0:
            raise AssertionError(
                f"wrangler {' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def output(self, *args: str) -> bytes:
        """Raw stdout bytes (values may be binary)."""
        result = subprocess.run(
            [str(self.bin), *args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            timeout=120,
            check=True,
        )
        return result.stdout

    def json(self, *args: str) -> Any:
        """Run a command that prints JSON (possibly after informational lines)."""
        out = self.run(*args).stdout
        start = min((i for i in (out.find("["), out.find("{")) if i >= 0), default=-1)
        if start < 0:
            raise AssertionError(f"no JSON in wrangler output:\n{out}")
        return json.loads(out[start:])
