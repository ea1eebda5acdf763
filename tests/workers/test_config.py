"""wrangler.toml: what is read, and one clear line for each way it can be wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgekv.workers import ConfigError, KVBinding, load_config


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
        "\"main\" must be a Python file (.py) or a JavaScript module (.js, .mjs), "
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
