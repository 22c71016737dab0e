"""The check annotation: `<!-- check: KIND key=value key="value with spaces" -->`.

Only the syntax lives here; what the keys mean is the verification registry's business.
Values are bare (no whitespace, no quotes) or double-quoted with `\\"` and `\\\\` escapes.
"""

from __future__ import annotations

import re

_KIND = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_SYNTAX = 'expected <!-- check: KIND key=value key="value with spaces" -->'


def is_annotation(comment_text: str) -> bool:
    """Whether a comment means to be a check annotation (and so must be a valid one)."""
    return _inner(comment_text).startswith("check")


def parse_annotation(comment_text: str) -> tuple[str, dict[str, str]]:
    """Read one annotation, with or without its `<!--`/`-->`, into (kind, params).

    Raises ValueError with a message a template author can act on.
    """
    text = _inner(comment_text)
    if not text.startswith("check:"):
        raise ValueError(f"malformed check annotation: {_SYNTAX}")
    rest = text[len("check:") :]
    pos = _skip_space(rest, 0)
    match = _KIND.match(rest, pos)
    if not match:
        raise ValueError(f"check annotation has no kind: {_SYNTAX}")
    kind = match.group()
    pos = match.end()
    if pos < len(rest) and not rest[pos].isspace():
        raise ValueError(f"unexpected {rest[pos]!r} after check kind {kind!r}: {_SYNTAX}")

    params: dict[str, str] = {}
    while (pos := _skip_space(rest, pos)) < len(rest):
        match = _KEY.match(rest, pos)
        if not match:
            raise ValueError(f"expected key=value in check annotation, found {_word_at(rest, pos)!r}")
        key = match.group()
        pos = match.end()
        if rest[pos : pos + 1] != "=":
            raise ValueError(f"{key!r} has no value in check annotation: write {key}=VALUE")
        pos += 1
        if rest[pos : pos + 1] == '"':
            value, pos = _read_quoted(rest, pos, key)
        else:
            end = pos
            while end < len(rest) and not rest[end].isspace():
                end += 1
            value = rest[pos:end]
            if '"' in value:
                raise ValueError(f"stray quote in the value of {key!r}: quote the whole value")
            pos = end
        if key in params:
            raise ValueError(f"duplicate key {key!r} in check annotation")
        params[key] = value
    return kind, params


def format_annotation(kind: str, params: dict[str, str]) -> str:
    """The canonical comment for a check: keys in the given order, quotes only where needed."""
    if not _KIND.fullmatch(kind):
        raise ValueError(f"invalid check kind {kind!r}")
    parts = [f"<!-- check: {kind}"]
    for key, value in params.items():
        if not _KEY.fullmatch(key):
            raise ValueError(f"invalid check key {key!r}")
        # Either would end or break the comment the value sits in.
        if "-->" in value or "\n" in value:
            raise ValueError(f"the value of {key!r} cannot hold '-->' or a line break")
        parts.append(f"{key}={_quote(value)}")
    return " ".join(parts) + " -->"


def _quote(value: str) -> str:
    if value and not any(ch.isspace() or ch in "\"'=" for ch in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _inner(comment_text: str) -> str:
    text = comment_text.strip()
    if text.startswith("<!--"):
        text = text[4:]
    if text.endswith("-->"):
        text = text[:-3]
    return text.strip()


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def _word_at(text: str, pos: int) -> str:
    end = pos
    while end < len(text) and not text[end].isspace():
        end += 1
    return text[pos:end]


def _read_quoted(text: str, pos: int, key: str) -> tuple[str, int]:
    """Read `"..."` starting at the opening quote; return the value and the position after it."""
    chars = []
    pos += 1
    while pos < len(text):
        ch = text[pos]
        if ch == "\\" and pos + 1 < len(text) and text[pos + 1] in '"\\':
            chars.append(text[pos + 1])
            pos += 2
        elif ch == '"':
            pos += 1
            if pos < len(text) and not text[pos].isspace():
                raise ValueError(f"expected a space after the quoted value of {key!r}")
            return "".join(chars), pos
        else:
            chars.append(ch)
            pos += 1
    raise ValueError(f"unterminated quote in the value of {key!r}")
