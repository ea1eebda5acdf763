"""JSON with comments (`wrangler.jsonc`): `//` and `/* */` comments and trailing commas removed,
everything else left for the JSON parser.

A small scanner rather than a JSON5 dependency: JSONC is JSON plus exactly these two things, and
blanking them in place (newlines kept) means the JSON parser's line and column in an error point
into the user's file.
"""

from __future__ import annotations

__all__ = ["strip_jsonc"]


def _blank(text: str) -> str:
    return "".join(c if c == "\n" else " " for c in text)


def strip_jsonc(text: str) -> str:
    """`text` with comments and trailing commas (before `]` or `}`) replaced by spaces."""
    out: list[str] = []
    i, n = 0, len(text)
    pending_comma: int | None = None  # index in `out` of a comma that may be trailing
    while i < n:
        c = text[i]
        if c == '"':
            end = i + 1
            while end < n and text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            out.append(text[i : end + 1])
            pending_comma = None
            i = end + 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(_blank(text[i:end]))
            i = end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2  # unterminated: the parser reports the truncation
            out.append(_blank(text[i:end]))
            i = end
        else:
            if c == ",":
                pending_comma = len(out)
            elif c in "]}" and pending_comma is not None:
                out[pending_comma] = " "
                pending_comma = None
            elif not c.isspace():
                pending_comma = None
            out.append(c)
            i += 1
    return "".join(out)
