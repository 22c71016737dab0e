"""Document -> canonical checklist Markdown, the inverse of parse().

Canonical means: ATX headings, `- [m]` items indented two spaces per level, annotations at
the end of the item's text, and a blank line between every two blocks, so that no paragraph
can swallow the next line (a lazy continuation, or `---` turning text into a heading).
"""

from __future__ import annotations

import re

from .annotations import format_annotation
from .tree import Document, Item, Section


def render(doc: Document) -> str:
    blocks: list[str] = []
    if doc.name is not None:
        blocks.append(_heading(1, doc.name))
    if doc.description:
        blocks.append(doc.description)
    blocks.extend(_item(item, 0) for item in doc.items)
    blocks.extend(_section(section) for section in doc.sections)
    return "\n\n".join(blocks).rstrip("\n") + "\n"


def _heading(level: int, title: str) -> str:
    return "#" * level + (f" {title}" if title else "")


def _section(section: Section) -> str:
    head = [_heading(section.level, section.title)]
    # Right under the heading, each on its own line: that is where parse() looks for them.
    if section.optional:
        head.append("<!-- optional -->")
    if section.after_go_live:
        head.append("<!-- after-go-live -->")
    if section.four_eyes:
        head.append("<!-- four-eyes -->")
    blocks = ["\n".join(head)]
    if section.body:
        blocks.append(section.body)
    blocks.extend(_item(item, 0) for item in section.items)
    # Roles before child sections: after a child heading they would belong to the child.
    if section.roles:
        blocks.append("\n".join(_role(role, section.role_counts.get(role, 1)) for role in section.roles))
    if section.footer:
        blocks.append(section.footer)
    blocks.extend(_section(child) for child in section.children)
    return "\n\n".join(blocks)


def _item(item: Item, depth: int) -> str:
    indent = "  " * depth
    inner = indent + "  "  # the item's content column
    # parse() never gives a blank line in a text, but a hand-built tree might: it would end
    # the paragraph and turn the rest of the text into body.
    lines = [line for line in item.text.split("\n") if line.strip()] or [""]
    suffix = []
    if item.optional:
        suffix.append("<!-- optional -->")
    if item.check is not None:
        suffix.append(format_annotation(item.check.kind, item.check.params))
    lines[-1] = " ".join([lines[-1], *suffix]).strip()
    first = f"{indent}- [{item.marker}] {lines[0]}".rstrip()
    blocks = ["\n".join([first, *(_continuation(line, inner) for line in lines[1:])])]
    if item.body:
        blocks.append(_indent(item.body, inner))
    blocks.extend(_item(child, depth + 1) for child in item.children)
    return "\n\n".join(blocks)


# What could start a block (list, heading, quote, fence, HTML, table, setext underline).
_BLOCK_START = re.compile(r"[-+*>#=|<`~]|\d{1,9}[.)]")


def _continuation(line: str, inner: str) -> str:
    # In the source this line continued the paragraph because it was indented four or more
    # (or was a lazy line). At the content column it could open a block instead; four more
    # spaces keep it text, and parse() strips them again.
    return inner + ("    " if _BLOCK_START.match(line) else "") + line


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line if line else "" for line in text.split("\n"))


def _role(role: str, count: int) -> str:
    # Every line of a role repeats its count: parse() keeps the highest one it reads.
    return f"- [ ] {_escape_role(role)}" + (f" ({count})" if count > 1 else "")


def _escape_role(role: str) -> str:
    # Roles are stored as plain words; keep Markdown from reading them as markup.
    role = re.sub(r"([\\`*_\[\]<>])|&(?=#?\w+;)", lambda m: "\\" + m.group(), role)
    # A name that itself ends in "(2)" must not read back as a count: an escaped ")" cannot
    # close one.
    return re.sub(r"(\(\s*[+-]?\d+\s*)\)$", r"\1\\)", role)
