"""The real workerd binary for the tests (and bench/), installed once with npm into
`tests/.node/` (beside wrangler, under the same file lock), pinned to the version whose wire
protocol docs/workers.md describes. Tests skip only when `node`/`npm` are absent.

    binary = ensure_installed()      # the platform binary itself, not the npm launcher
"""

from __future__ import annotations

import fcntl
import subprocess
from pathlib import Path

from tests.wrangler import NODE_DIR, available

__all__ = ["PACKAGE", "available", "ensure_installed", "ensure_package"]

PACKAGE = "workerd@1.20261117.1"


def ensure_package(spec: str, bin_path: str, timeout: float = 900) -> Path:
    """`NODE_DIR/node_modules/<bin_path>`, installing npm package `spec` first if needed."""
    NODE_DIR.mkdir(parents=True, exist_ok=True)
    (NODE_DIR / ".gitignore").write_text("*\n")
    target = NODE_DIR / "node_modules" / bin_path
    with (NODE_DIR / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        name, _, version = spec.rpartition("@")
        package_json = NODE_DIR / "node_modules" / name / "package.json"
        installed = package_json.exists() and f'"version": "{version}"' in package_json.read_text()
        if not (target.exists() and installed):
            if not (NODE_DIR / "package.json").exists():
                (NODE_DIR / "package.json").write_text('{"private": true}\n')
            subprocess.run(
                ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", spec],
                cwd=NODE_DIR,
                check=True,
                timeout=timeout,
                capture_output=True,
            )
    return target


def ensure_installed() -> Path:
    """The workerd platform binary (linux x64 here; what `find_workerd` resolves to)."""
    from edgekv.workers.workerd.process import find_workerd

    launcher = ensure_package(PACKAGE, ".bin/workerd")
    return find_workerd(launcher, NODE_DIR)
