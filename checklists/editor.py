"""Structured edits of a checklist tree, for the template editor.

The editor's state is the Markdown text itself: every operation parses it, changes the tree
and renders it back, so the text area, the buttons and a paste from elsewhere always agree,
and the editor works with JavaScript off. Nodes are addressed by their place in document
order ("n0", "n1", ...), which `outline()` hands to the page.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import markdown as md
from .verifications import registry
from .verifications.base import ParamError
from .verifications.suggest import suggest


class EditError(ValueError):
    pass


@dataclass
class Node:
    """One row of the editor's outline."""

    key: str
    kind: str  # "section" | "item"
    depth: int
    obj: md.Item | md.Section
    siblings: list  # the list that holds obj
    parent: md.Item | md.Section | None
    section: md.Section | None


def outline(doc: md.Document) -> list[Node]:
    nodes: list[Node] = []

    def walk_items(items, parent, section, depth):
        for item in items:
            nodes.append(Node(f"n{len(nodes)}", "item", depth, item, items, parent, section))
            walk_items(item.children, item, section, depth + 1)

    def walk_sections(sections, parent, depth):
        for section in sections:
            nodes.append(Node(f"n{len(nodes)}", "section", depth, section, sections, parent, section))
            walk_items(section.items, None, section, depth + 1)
            walk_sections(section.children, section, depth + 1)

    walk_items(doc.items, None, None, 0)
    walk_sections(doc.sections, None, 0)
    return nodes


def _find(doc: md.Document, key: str) -> Node:
    for node in outline(doc):
        if node.key == key:
            return node
    raise EditError("That line is gone: the checklist changed. Try again.")


def parse_params(text: str) -> dict[str, str]:
    """`key=value` pairs, one per line or space separated (quotes allowed), as in the annotation."""
    from .markdown.annotations import parse_annotation

    try:
        _, params = parse_annotation(f"check: x {text.replace(chr(10), ' ')}")
    except ValueError as exc:
        raise EditError(str(exc)) from None
    return params


def apply(doc: md.Document, op: str, key: str = "", *, text: str = "", kind: str = "", params: str = "") -> md.Document:
    """Change the tree in place and return it. Raises EditError with a message for the user."""
    if op == "add-section":
        level = 2
        doc.sections.append(md.Section(title=text.strip() or "New section", level=level))
        return doc
    if op == "add-root-item":
        doc.items.append(md.Item(text=text.strip() or "New item"))
        return doc
    if op == "roles":
        roles = [r.strip() for r in text.replace("\n", ",").split(",") if r.strip()]
        _set_roles(doc, roles)
        return doc

    node = _find(doc, key)
    obj, siblings = node.obj, node.siblings
    index = next(i for i, o in enumerate(siblings) if o is obj)

    if op == "edit":
        new = " ".join(text.split()) if node.kind == "section" else text.strip()
        if not new:
            raise EditError("The text cannot be empty.")
        if node.kind == "section":
            obj.title = new
        else:
            obj.text = new
    elif op == "up":
        if index == 0:
            raise EditError("Already first in its group.")
        siblings[index - 1], siblings[index] = siblings[index], siblings[index - 1]
    elif op == "down":
        if index == len(siblings) - 1:
            raise EditError("Already last in its group.")
        siblings[index + 1], siblings[index] = siblings[index], siblings[index + 1]
    elif op == "indent":
        if index == 0:
            raise EditError("Nothing above to nest under.")
        siblings.pop(index)
        above = siblings[index - 1]
        if node.kind == "item":
            above.children.append(obj)
        else:
            _relevel(obj, above.level + 1)
            above.children.append(obj)
    elif op == "outdent":
        if node.parent is None:
            raise EditError("Already at the top level.")
        grand = _holder_of(doc, node.parent)
        siblings.pop(index)
        place = next(i for i, o in enumerate(grand) if o is node.parent)
        if node.kind == "section":
            _relevel(obj, node.parent.level)
        grand.insert(place + 1, obj)
    elif op == "remove":
        siblings.pop(index)
    elif op == "add-item":
        new_item = md.Item(text=text.strip() or "New item")
        if node.kind == "section":
            obj.items.append(new_item)
        else:
            siblings.insert(index + 1, new_item)
    elif op == "add-child":
        if node.kind != "item":
            raise EditError("Sub-items go under items.")
        obj.children.append(md.Item(text=text.strip() or "New sub-item"))
    elif op == "optional":
        obj.optional = not obj.optional
    elif op == "after-go-live":
        if node.kind != "section":
            raise EditError("Only a section is done after go-live.")
        obj.after_go_live = not obj.after_go_live
    elif op == "check":
        if node.kind != "item":
            raise EditError("Checks attach to items.")
        try:
            obj.check = md.Check(kind=kind, params=registry.validate(kind, parse_params(params)))
        except ParamError as exc:
            raise EditError(f"{kind} check: {exc}") from None
    elif op == "uncheck":
        if node.kind == "item":
            obj.check = None
    else:
        raise EditError(f"Unknown edit {op!r}.")
    return doc


def _holder_of(doc: md.Document, target) -> list:
    for node in outline(doc):
        if node.obj is target:
            return node.siblings
    raise EditError("That line is gone.")


def _relevel(section: md.Section, level: int) -> None:
    if level > 6:
        raise EditError("Sections nest at most five deep (######).")
    section.level = level
    for child in section.children:
        _relevel(child, level + 1)


def _set_roles(doc: md.Document, roles: list[str]) -> None:
    signoff = next((s for s in doc.iter_sections() if s.roles), None)
    if signoff is None and roles:
        signoff = md.Section(title="Sign-Off", level=2)
        doc.sections.append(signoff)
    if signoff is not None:
        signoff.roles = roles
        if not roles and not signoff.body and not signoff.footer and not signoff.items and not signoff.children:
            for holder in (doc.sections, *[s.children for s in doc.iter_sections()]):
                if signoff in holder:
                    holder.remove(signoff)
                    break


KINDS = sorted(registry.KINDS)


def params_text(params: dict[str, str]) -> str:
    from .markdown.annotations import format_annotation

    # The annotation's own quoting, without its `<!-- check: KIND` and `-->`.
    formatted = format_annotation("x", params)
    return formatted.removeprefix("<!-- check: x").removesuffix("-->").strip()


def prepare_forms(nodes: list[Node], found: list[tuple[str, str, dict]]) -> None:
    """What each item's check form shows: its check, else a suggestion, else nothing."""
    suggested = {key: (kind, params) for key, kind, params in found}
    for node in nodes:
        node.suggested = False
        node.form_kind, node.form_params = "http", ""
        if node.kind != "item":
            continue
        if node.obj.check is not None:
            node.form_kind, node.form_params = node.obj.check.kind, params_text(node.obj.check.params)
        elif node.key in suggested:
            kind, params = suggested[node.key]
            node.suggested = True
            node.form_kind, node.form_params = kind, params_text(params)


def suggestions(doc: md.Document) -> list[tuple[str, str, dict]]:
    """Checks the editor offers for items that look verifiable (never attached silently)."""
    found = []
    for node in outline(doc):
        if node.kind == "item" and node.obj.check is None:
            for kind, params in suggest(node.obj.text, node.obj.body):
                found.append((node.key, kind, params))
                break
    return found


def attach_suggestions(doc: md.Document, keys: set[str]) -> int:
    """Attach the suggested check of each item whose outline key was ticked; answers how many."""
    attached = 0
    nodes = {node.key: node for node in outline(doc)}
    for key, kind, params in suggestions(doc):
        if key in keys:
            nodes[key].obj.check = md.Check(kind=kind, params=dict(params))
            attached += 1
    return attached
