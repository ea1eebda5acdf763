"""wrangler.toml: what is read, and one clear line for each way it can be wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgekv.workers import ConfigError, KVBinding, load_config
from edgekv.workers.config import find_config


def write(tmp_path: Path, text: str, *, module: bool = True) -> Path:
    if module:
        (tmp_path / "src").mkdir(exist_ok=True)
        (tmp_path / "src" / "worker.py").write_text("")
    config = tmp_path / "wrangler.toml"
    config.write_text(text)
    return config


def test_a_valid_config(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            'name = "todo"\nmain = "src/worker.py"\n'
            'kv_namespaces = [\n  { binding = "TODO", id = "06779da6940b431db6e566b4846d64db" },\n'
            '  { binding = "_other2", id = "x" }\n]\n[vars]\nGREETING = "hi"\nLIMIT = 3\n',
        )
    )
    assert config.name == "todo"
    assert config.main == (tmp_path / "src" / "worker.py").absolute()
    assert config.kv_namespaces == (
        KVBinding("TODO", "06779da6940b431db6e566b4846d64db"),
        KVBinding("_other2", "x"),
    )
    assert config.vars == {"GREETING": "hi", "LIMIT": 3}
    assert config.binding("TODO").id == "06779da6940b431db6e566b4846d64db"
    with pytest.raises(
        ConfigError, match="no KV binding named 'NOPE' \\(bindings: TODO, _other2\\)"
    ):
        config.binding("NOPE")


def test_main_is_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(tmp_path, 'main = "src/worker.py"\n')
    monkeypatch.chdir("/")
    assert load_config(config).main == tmp_path / "src" / "worker.py"


def test_no_bindings_and_no_main_for_the_kv_commands(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, 'name = "x"\n', module=False), need_main=False)
    assert config.main is None and config.kv_namespaces == ()


BAD = [
    ("", '"main" is missing (the worker module, e.g. main = "src/worker.py")'),
    ('main = "src/nope.py"', "main file 'src/nope.py' not found"),
    ('main = "src/worker.js"', "main file 'src/worker.js' not found"),
    (
        'main = "src/worker.ts"',
        '"main" must be a Python file (.py) or a JavaScript module (.js, .mjs), '
        "got 'src/worker.ts'",
    ),
    ("main = 3", '"main" must be the path of a Python or JavaScript file'),
    ('main = "src/worker.py"\nname = 1', '"name" must be a string'),
    ('main = "src/worker.py"\nkv_namespaces = "x"', '"kv_namespaces" must be an array'),
    ('main = "src/worker.py"\nkv_namespaces = ["x"]', "kv_namespaces[0]: expected a table"),
    (
        'main = "src/worker.py"\nkv_namespaces = [{ binding = "my-kv", id = "x" }]',
        "kv_namespaces[0]: binding 'my-kv' is not a valid Python identifier",
    ),
    (
        'main = "src/worker.py"\nkv_namespaces = [{ binding = "class", id = "x" }]',
        "binding 'class' is not a valid Python identifier",
    ),
    ('main = "src/worker.py"\nkv_namespaces = [{ id = "x" }]', '"binding" is missing'),
    (
        'main = "src/worker.py"\nkv_namespaces = [{ binding = "A" }]',
        "binding 'A' needs an \"id\"",
    ),
    (
        'main = "src/worker.py"\nkv_namespaces = [{ binding = "A", id = "x" }, '
        '{ binding = "A", id = "y" }]',
        "kv_namespaces[1]: binding 'A' is defined twice",
    ),
    ('main = "src/worker.py"\nvars = 1', '"vars" must be a table'),
    ('main = "src/worker.py"\n[vars]\n"a-b" = 1', "vars.a-b is not a valid Python identifier"),
    (
        'main = "src/worker.py"\nkv_namespaces = [{ binding = "A", id = "x" }]\n[vars]\nA = 1',
        "'A' is both a KV binding and a var",
    ),
    ('main = "src/worker.py"\nkv_namespaces = [', "invalid TOML: "),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_invalid_configs_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    config = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(config)
    error = str(info.value)
    assert message in error
    assert "\n" not in error
    assert "wrangler.toml" in error


def test_a_missing_or_unreadable_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file .*nope\.toml not found"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path)  # a directory
    (tmp_path / "latin1.toml").write_bytes(b'name = "\xe9"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(tmp_path / "latin1.toml")


# -- wrangler.json(c), [env.NAME], preview_id, JavaScript workers -----------------------------

JSONC = """{
  // the same keys as wrangler.toml
  "name": "shop",
  "main": "src/worker.js",
  "compatibility_date": "2026-10-01",
  "compatibility_flags": ["nodejs_compat"],
  "kv_namespaces": [
    { "binding": "my-kv", "id": "prod-id", "preview_id": "preview-id" }, // dashes: fine in JS
  ],
  "vars": { "GREETING": "hi", "LIMITS": { "n": 3 } },
  "env": {
    "staging": {
      "kv_namespaces": [{ "binding": "my-kv", "id": "staging-id" }],
      "vars": { "GREETING": "staging" },
    },
    "named": { "name": "other", "main": "src/other.mjs" },
  },
}
"""


def write_js(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / "src").mkdir(exist_ok=True)
    (tmp_path / "src" / "worker.js").write_text("export default {}")
    (tmp_path / "src" / "other.mjs").write_text("export default {}")
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["wrangler.json", "wrangler.jsonc"])
def test_a_jsonc_config(tmp_path: Path, name: str) -> None:
    config = load_config(write_js(tmp_path, name, JSONC))
    assert config.javascript
    assert config.name == "shop"
    assert config.main == tmp_path / "src" / "worker.js"
    assert config.compatibility_date == "2026-10-01"
    assert config.compatibility_flags == ("nodejs_compat",)
    assert config.kv_namespaces == (KVBinding("my-kv", "prod-id"),)
    assert config.vars == {"GREETING": "hi", "LIMITS": {"n": 3}}


def test_dev_uses_the_preview_id(tmp_path: Path) -> None:
    path = write_js(tmp_path, "wrangler.jsonc", JSONC)
    assert load_config(path, preview=True).kv_namespaces[0].id == "preview-id"
    assert load_config(path).kv_namespaces[0].id == "prod-id"
    toml = write(
        tmp_path,
        'main = "src/worker.py"\n'
        'kv_namespaces = [{ binding = "KV", id = "a", preview_id = "b" }, '
        '{ binding = "K2", id = "c" }]\n',
    )
    assert [b.id for b in load_config(toml, preview=True).kv_namespaces] == ["b", "c"]


def test_env_sections(tmp_path: Path) -> None:
    path = write_js(tmp_path, "wrangler.jsonc", JSONC)
    staging = load_config(path, env="staging")
    assert staging.name == "shop-staging"  # as wrangler names it
    assert staging.main == tmp_path / "src" / "worker.js"  # inherited
    assert staging.compatibility_flags == ("nodejs_compat",)
    assert staging.kv_namespaces == (KVBinding("my-kv", "staging-id"),)
    assert staging.vars == {"GREETING": "staging"}
    named = load_config(path, env="named")
    assert named.name == "other" and named.main == tmp_path / "src" / "other.mjs"
    assert named.kv_namespaces == () and named.vars == {}  # not inherited
    assert named.reload() == named
    with pytest.raises(
        ConfigError, match=r"no \[env.prod\] section \(environments: named, staging\)"
    ):
        load_config(path, env="prod")


def test_env_in_toml(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'name = "w"\nmain = "src/worker.py"\nkv_namespaces = [{ binding = "KV", id = "top" }]\n'
        '[env.test]\nkv_namespaces = [{ binding = "KV", id = "test-id" }]\n'
        '[env.test.vars]\nX = "1"\n',
    )
    config = load_config(path, env="test")
    assert config.kv_namespaces == (KVBinding("KV", "test-id"),)
    assert config.vars == {"X": "1"} and config.name == "w-test" and config.env == "test"


BAD_JSON = [
    ('{"main": "src/worker.js",}', None),
    (
        '{"main": "src/worker.js" "x": 1}',
        "invalid JSON at line 1 column 26: Expecting ',' delimiter",
    ),
    ("[1]", "expected a JSON object at the top level"),
    ('{"main": "src/worker.js", "compatibility_date": "soon"}', '"compatibility_date" must'),
    ('{"main": "src/worker.js", "compatibility_flags": "x"}', '"compatibility_flags" must'),
    ('{"main": "src/worker.js", "env": 1}', '"env" must be a table'),
    (
        '{"main": "src/worker.js", '
        '"kv_namespaces": [{"binding": "K", "id": "x", "preview_id": 1}]}',
        "preview_id must be a namespace id",
    ),
    ('{"main": "src/worker.js", "kv_namespaces": [{"binding": "", "id": "x"}]}', "non-empty"),
]


@pytest.mark.parametrize(("text", "message"), BAD_JSON)
def test_invalid_json_configs(tmp_path: Path, text: str, message: str | None) -> None:
    path = write_js(tmp_path, "wrangler.json", text)
    if message is None:
        assert load_config(path).javascript  # a trailing comma is fine in .json too
        return
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message in str(info.value) and "wrangler.json" in str(info.value)


def test_find_config_prefers_wranglers_order(tmp_path: Path) -> None:
    assert find_config(None, tmp_path) == tmp_path / "wrangler.toml"  # none: the default's error
    (tmp_path / "wrangler.toml").write_text("")
    assert find_config(None, tmp_path) == tmp_path / "wrangler.toml"
    (tmp_path / "wrangler.jsonc").write_text("{}")
    assert find_config(None, tmp_path) == tmp_path / "wrangler.jsonc"
    (tmp_path / "wrangler.json").write_text("{}")
    assert find_config(None, tmp_path) == tmp_path / "wrangler.json"
    assert find_config(Path("x.toml"), tmp_path) == Path("x.toml")


def test_the_kv_commands_find_a_jsonc_config(tmp_path: Path) -> None:
    from tests.workers.processes import run_cli

    (tmp_path / "wrangler.jsonc").write_text(
        '{ "kv_namespaces": [{ "binding": "KV", "id": "a1b2c3" },], } // no main needed\n'
    )
    put = run_cli(["kv", "key", "put", "k", "from jsonc", "--binding", "KV"], cwd=tmp_path)
    assert put.returncode == 0, put.stderr
    got = run_cli(["kv", "key", "get", "k", "--namespace-id", "a1b2c3"], cwd=tmp_path)
    assert got.stdout == b"from jsonc"
