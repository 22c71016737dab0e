"""Checklist Markdown: parse() text into plain dataclasses, render() them back.

Pure functions, no database: persisting a parsed tree is `checklists.services`' job.
"""

from .parse import parse
from .render import render
from .repair import decode, repair_text
from .tree import Check, Document, Item, ParseError, Section


def parse_bytes(data: bytes) -> Document:
    """Decode an uploaded file (any common encoding, mojibake repaired), then parse it."""
    return parse(decode(data))


__all__ = [
    "Check",
    "Document",
    "Item",
    "ParseError",
    "Section",
    "decode",
    "parse",
    "parse_bytes",
    "render",
    "repair_text",
]
