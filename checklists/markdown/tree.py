"""The parsed checklist: plain dataclasses, no database.

The persistence service and the exporter are written against these shapes, so they only
grow new helpers, never change fields. `line` fields are where a thing was read from; they
take no part in equality so that a parsed export equals the tree it was rendered from.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field


class ParseError(ValueError):
    """Bad checklist input. `str(e)` is one line that names the line when there is one."""

    def __init__(self, message: str, line: int | None):
        # Users see this in a terminal and in a JSON `error` field: keep it on one line.
        self.message = " ".join(str(message).split())
        self.line = line
        super().__init__(self.message, line)

    def __str__(self) -> str:
        if self.line is None:
            return self.message
        return f"line {self.line}: {self.message}"


@dataclass
class Check:
    kind: str
    params: dict[str, str]


@dataclass
class Item:
    text: str
    body: str = ""
    marker: str = " "
    optional: bool = False
    check: Check | None = None
    children: list[Item] = field(default_factory=list)
    line: int = field(default=0, compare=False)

    def iter_items(self, depth: int = 0) -> Iterator[tuple[Item, int]]:
        """This item and its descendants, depth-first, with their depth."""
        yield self, depth
        for child in self.children:
            yield from child.iter_items(depth + 1)


@dataclass
class Section:
    title: str
    level: int
    body: str = ""
    optional: bool = False
    after_go_live: bool = False
    items: list[Item] = field(default_factory=list)
    children: list[Section] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    footer: str = ""
    # Roles that need more than one approver ("- [ ] Ops (2)"): role -> how many people.
    role_counts: dict[str, int] = field(default_factory=dict)
    # `<!-- four-eyes -->` under a Sign-Off heading: whoever started a run is not enough.
    four_eyes: bool = False
    line: int = field(default=0, compare=False)

    def iter_items(self) -> Iterator[tuple[Item, int]]:
        """This section's own items (not its child sections'), depth-first, depth 0 = top."""
        for item in self.items:
            yield from item.iter_items()

    def iter_sections(self) -> Iterator[Section]:
        yield self
        for child in self.children:
            yield from child.iter_sections()


@dataclass
class Document:
    name: str | None
    description: str = ""
    items: list[Item] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)

    def iter_sections(self) -> Iterator[Section]:
        """Every section, depth-first in document order."""
        for section in self.sections:
            yield from section.iter_sections()

    def iter_items(self) -> Iterator[tuple[Item, int]]:
        """Every item in checklist order (root items first, then each section's), with depth."""
        for item in self.items:
            yield from item.iter_items()
        for section in self.iter_sections():
            yield from section.iter_items()

    @property
    def roles(self) -> list[str]:
        """Required sign-off roles in order of appearance, each once."""
        seen: dict[str, None] = {}
        for section in self.iter_sections():
            for role in section.roles:
                seen.setdefault(role, None)
        return list(seen)

    @property
    def role_counts(self) -> dict[str, int]:
        """Roles that need more than one approver, with how many; the higher count wins."""
        counts: dict[str, int] = {}
        for section in self.iter_sections():
            for role, count in section.role_counts.items():
                counts[role] = max(count, counts.get(role, 0))
        return counts

    @property
    def four_eyes(self) -> bool:
        """The person who started a run cannot be its only approver.

        parse() sets the flag on Sign-Off sections only.
        """
        return any(section.four_eyes for section in self.iter_sections())

    @property
    def item_count(self) -> int:
        return sum(1 for _ in self.iter_items())

    @property
    def section_count(self) -> int:
        return sum(1 for _ in self.iter_sections())

    @property
    def check_count(self) -> int:
        return sum(1 for item, _ in self.iter_items() if item.check is not None)
