"""The official JavaScript SDK (`cloudflare` on npm, v7) for tests: installed once with npm
into tests/.node/ beside wrangler (tests/wrangler.py), under the same file lock, and run by
node as an ES module script with CLOUDFLARE_BASE_URL pointed at a server."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.wrangler import NODE_DIR, available

__all__ = ["PACKAGE", "available", "ensure_installed", "run_script"]

PACKAGE = "cloudflare@7"


def ensure_installed(timeout: float = 900) -> Path:
    """The package's directory, installing it first if needed (npm registry)."""
    NODE_DIR.mkdir(parents=True, exist_ok=True)
    (NODE_DIR / ".gitignore").write_text("*\n")
    target = NODE_DIR / "node_modules" / "cloudflare"
    with (NODE_DIR / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        version = target / "package.json"
        if not version.exists() or not json.loads(version.read_text())["version"].startswith("7."):
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
    return target


def run_script(source: str, base_url: str, token: str, account: str, workdir: Path) -> Any:
    """Run `source` (an ES module that prints one JSON document) with `client`, `ACCOUNT` in
    scope; returns the parsed output."""
    ensure_installed()
    script = workdir / "script.mjs"
    script.write_text(
        'import Cloudflare from "cloudflare";\n'
        "const ACCOUNT = process.env.EDGEKV_ACCOUNT_ID;\n"
        "const client = new Cloudflare({ apiToken: process.env.CLOUDFLARE_API_TOKEN,"
        " baseURL: process.env.CLOUDFLARE_BASE_URL, maxRetries: 0 });\n" + source
    )
    # node resolves "cloudflare" from the script's directory upwards: link it in
    (workdir / "node_modules").mkdir(exist_ok=True)
    link = workdir / "node_modules" / "cloudflare"
    if not link.exists():
        link.symlink_to(NODE_DIR / "node_modules" / "cloudflare")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDFLARE_", "EDGEKV_"))}
    env.update(CLOUDFLARE_BASE_URL=base_url, CLOUDFLARE_API_TOKEN=token, EDGEKV_ACCOUNT_ID=account)
    result = subprocess.run(
        ["node", str(script)], cwd=workdir, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"node exited {result.returncode}:\n{result.stderr}"
    return json.loads(result.stdout)
