"""A workerd config (Cap'n Proto text) for one worker of a `WorkerConfig`.

One `external` service per KV binding, all pointing at edgekv's backend socket and told apart by
the `X-KV-Namespace` header workerd injects; the worker's modules are the config's `main` and
the `.js` / `.mjs` files it imports by relative paths (transitively), inlined as strings so
the config file can live anywhere and a reload is simply a new config. An entry module edgekv
adds in front answers `GET /healthz` and turns an exception of the worker into a logged 500.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from edgekv.workers.config import JS_SUFFIXES, WorkerConfig

__all__ = ["ENTRY_MODULE", "SOCKET_NAME", "module_files", "render_config"]

SOCKET_NAME = "http"
ENTRY_MODULE = "__edgekv_entry.mjs"
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


# Relative specifiers of static imports / re-exports and of dynamic `import("./x.js")`.
_IMPORT = re.compile(r"""(?:\bfrom\s*|\bimport\s*\(?\s*)(["'])(\.{1,2}/[^"'\n]+)\1""")


def module_files(main: Path) -> list[Path]:
    """`main`, then every `.js` / `.mjs` file it imports by a relative path, transitively
    (found by scanning the sources; only files under `main`'s directory can be modules)."""
    base = main.parent.resolve()
    found = [main]
    seen = {main.resolve()}
    i = 0
    while i < len(found) and len(found) < _MAX_MODULES:
        try:
            source = found[i].read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            source = ""
        for _, spec in _IMPORT.findall(source):
            target = (found[i].parent / spec).resolve()
            if (
                target.suffix in JS_SUFFIXES
                and target not in seen
                and target.is_relative_to(base)
                and target.is_file()
            ):
                seen.add(target)
                found.append(target)
        i += 1
    return found


def render_config(config: WorkerConfig, *, backend_address: str) -> str:
    """The config text. The socket's address is a placeholder: edgekv hands workerd its
    listening socket (`--socket-fd`)."""
    assert config.main is not None
    files = module_files(config.main)
    base = config.main.parent.resolve()
    main_name = config.main.name
    modules = [f"(name = {_text(ENTRY_MODULE)}, esModule = {_text(_ENTRY % {'main': main_name})})"]
    for path in files:
        name = path.resolve().relative_to(base).as_posix()
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
