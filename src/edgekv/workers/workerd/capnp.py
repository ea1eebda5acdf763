"""A workerd config (Cap'n Proto text) for one worker of a `WorkerConfig`.

One `external` service per KV binding, all pointing at edgekv's backend socket and told apart by
the `X-KV-Namespace` header workerd injects; the worker's modules are the config's `main` and
every other `.js` / `.mjs` file beside it (so relative imports resolve), inlined as strings so
the config file can live anywhere and a reload is simply a new config. An entry module edgekv
adds in front answers `GET /healthz` and turns an exception of the worker into a logged 500.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgekv.workers.config import JS_SUFFIXES, WorkerConfig

__all__ = ["ENTRY_MODULE", "SOCKET_NAME", "module_files", "render_config"]

SOCKET_NAME = "http"
ENTRY_MODULE = "__edgekv_entry.mjs"
_SKIP_DIRS = {"node_modules", ".git", ".wrangler", ".edgekv", "__pycache__"}
_MAX_MODULES = 500

# `target` is the worker's default export: an object with fetch(), or a WorkerEntrypoint class.
_ENTRY = """\
import * as worker from "./%(main)s";
const target = worker.default;
const HEALTH = "/healthz";
const FAILED = "Internal Server Error: the worker raised an exception\\n";
export default {
  async fetch(request, env, ctx) {
    if ((request.method === "GET" || request.method === "HEAD") &&
        new URL(request.url).pathname === HEALTH) {
      return new Response("ok\\n");
    }
    try {
      if (typeof target === "function") return await new target(ctx, env).fetch(request);
      return await target.fetch(request, env, ctx);
    } catch (error) {
      console.error(`${request.method} ${new URL(request.url).pathname}: ` +
        `the worker raised an exception: ${error && error.stack || error}`);
      const headers = {"content-type": "text/plain;charset=UTF-8"};
      return new Response(FAILED, {status: 500, headers});
    }
  },
};
"""


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _text(value: str) -> str:
    """A Cap'n Proto text literal: UTF-8, with C escapes for quotes and control characters."""
    out = []
    for ch in value:
        esc = _ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
        elif ch < " " or ch == "\x7f":
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def module_files(main: Path) -> list[Path]:
    """`main`, then the other JavaScript modules under its directory (sorted)."""
    base = main.parent
    found: list[Path] = []
    for path in sorted(base.rglob("*")):
        rel = path.relative_to(base)
        if any(part in _SKIP_DIRS or part.startswith(".") for part in rel.parts[:-1]):
            continue
        if path.suffix in JS_SUFFIXES and path.is_file() and path != main:
            found.append(path)
            if len(found) >= _MAX_MODULES:
                break
    return [main, *found]


def render_config(config: WorkerConfig, *, backend_address: str) -> str:
    """The config text. The socket's address is a placeholder: edgekv hands workerd its
    listening socket (`--socket-fd`)."""
    assert config.main is not None
    files = module_files(config.main)
    base = config.main.parent
    main_name = config.main.name
    modules = [f"(name = {_text(ENTRY_MODULE)}, esModule = {_text(_ENTRY % {'main': main_name})})"]
    for path in files:
        name = path.relative_to(base).as_posix()
        source = path.read_text(encoding="utf-8")
        modules.append(f"(name = {_text(name)}, esModule = {_text(source)})")

    services = ['(name = "main", worker = .worker)']
    bindings = []
    for b in config.kv_namespaces:
        service = f"kv:{b.binding}"
        bindings.append(f"(name = {_text(b.binding)}, kvNamespace = {_text(service)})")
        headers = f'[(name = "X-KV-Namespace", value = {_text(b.id)})]'
        services.append(
            f"(name = {_text(service)}, external = (address = {_text(backend_address)}, "
            f"http = (injectRequestHeaders = {headers})))"
        )
    for name, value in config.vars.items():
        if isinstance(value, str):
            bindings.append(f"(name = {_text(name)}, text = {_text(value)})")
        else:
            bindings.append(f"(name = {_text(name)}, json = {_text(json.dumps(value))})")
    flags = ", ".join(_text(f) for f in config.compatibility_flags)
    sep = ",\n    "
    return f"""using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    {sep.join(services)}
  ],
  sockets = [(name = "{SOCKET_NAME}", address = "127.0.0.1:0", http = (), service = "main")],
);

const worker :Workerd.Worker = (
  modules = [
    {sep.join(modules)}
  ],
  compatibilityDate = {_text(config.compatibility_date)},
  compatibilityFlags = [{flags}],
  bindings = [
    {sep.join(bindings)}
  ],
);
"""
