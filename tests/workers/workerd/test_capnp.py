"""The generated workerd config: which modules go in (main and what it imports, nothing else)."""

from __future__ import annotations

from pathlib import Path

from edgekv.workers.config import load_config
from edgekv.workers.workerd.capnp import module_files, render_config


def test_modules_are_main_and_its_relative_imports(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "lib").mkdir(parents=True)
    (src / "worker.js").write_text(
        'import { a } from "./lib/a.js";\nimport "npm-package";\n'
        'const later = () => import("./lazy.mjs");\nexport default {};\n'
    )
    (src / "lib" / "a.js").write_text(
        "export { b } from '../b.mjs';\nimport '../worker.js';\nimport '../../outside.js';\n"
    )
    (src / "b.mjs").write_text("export const b = 1;\n")
    (src / "lazy.mjs").write_text("export default 1;\n")
    (src / "unrelated.js").write_text("module.exports = {}; // CommonJS: must not be loaded\n")
    (tmp_path / "outside.js").write_text("export default 0;\n")
    assert module_files(src / "worker.js") == [
        src / "worker.js",
        (src / "lib" / "a.js").resolve(),
        (src / "lazy.mjs").resolve(),
        (src / "b.mjs").resolve(),
    ]
    (tmp_path / "wrangler.toml").write_text(
        'main = "src/worker.js"\nkv_namespaces = [{ binding = "my-kv", id = "ns1" }]\n'
        '[vars]\nA = "text"\nB = [1, "two"]\n'
    )
    text = render_config(load_config(tmp_path / "wrangler.toml"), backend_address="unix:/x/kv.sock")
    for name in ("worker.js", "lib/a.js", "b.mjs", "lazy.mjs", "__edgekv_entry.mjs"):
        assert f'(name = "{name}", esModule = ' in text
    assert text.count("esModule = ") == 5  # nor unrelated.js, nor ../outside.js
    assert '(name = "my-kv", kvNamespace = "kv:my-kv")' in text
    assert 'injectRequestHeaders = [(name = "X-KV-Namespace", value = "ns1")]' in text
    assert 'external = (address = "unix:/x/kv.sock"' in text
    assert '(name = "A", text = "text")' in text
    assert '(name = "B", json = "[1, \\"two\\"]")' in text
