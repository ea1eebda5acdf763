"""wrangler.jsonc: comments and trailing commas go, strings and positions stay."""

from __future__ import annotations

import json

import pytest

from edgekv.workers._jsonc import strip_jsonc


def test_comments_and_trailing_commas() -> None:
    text = """{
  // a line comment
  "name": "w", /* a block
  comment */ "list": [1, 2, ],
  "obj": {"a": 1,},
}"""
    assert json.loads(strip_jsonc(text)) == {"name": "w", "list": [1, 2], "obj": {"a": 1}}


@pytest.mark.parametrize(
    "value",
    ["http://x//y", "/* not a comment */", "a,]", 'quote \\" // still a string', "back\\\\"],
)
def test_strings_are_left_alone(value: str) -> None:
    text = json.dumps({"v": value, "w": [value]})
    assert json.loads(strip_jsonc(text)) == {"v": value, "w": [value]}


def test_positions_are_kept_for_error_messages() -> None:
    text = '{\n  // comment\n  "a": 1,\n  "b": nope\n}'
    stripped = strip_jsonc(text)
    assert len(stripped) == len(text) and stripped.count("\n") == text.count("\n")
    with pytest.raises(json.JSONDecodeError) as info:
        json.loads(stripped)
    assert (info.value.lineno, info.value.colno) == (4, 8)


def test_a_comma_between_values_stays() -> None:
    assert json.loads(strip_jsonc("[1, /* c */ 2, // x\n 3]")) == [1, 2, 3]
    with pytest.raises(json.JSONDecodeError):
        json.loads(strip_jsonc("[1,,]"))  # only the last comma is trailing
