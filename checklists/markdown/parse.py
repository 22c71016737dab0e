"""Checklist Markdown -> plain dataclasses (see CONTRACT.md, "Checklist Markdown").

Pure: text in, a Document out, a ParseError with a line number for bad input.

It runs in two passes. `_Walker` reads markdown-it's block tokens (so code fences, tables
and HTML blocks are understood exactly as a Markdown viewer shows them) and turns them into
a flat stream of events in document order: a heading, a task item (knowing its parent task),
or a block of raw source lines. `_Assembler` then builds the tree from that stream: headings
open sections, tasks become items, and every other block goes to whoever was last seen (the
last item, else the section, else the description), so nothing in the file is dropped.

Bodies keep the source text of their blocks (dedented to the item's content column) rather
than a re-rendering of tokens: what the author wrote is what the export gives back. Export
writes a body somewhere else than where it was read (under its item, after the role list),
so the few blocks whose meaning hangs on their old surroundings are made safe here, once,
and the tree then round-trips: an unclosed fence or HTML block is closed, a block that would
fall into a preceding list is kept apart, an unclosed `<!--` in an item's text is escaped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from markdown_it import MarkdownIt
from markdown_it.token import Token

from . import annotations
from .repair import decode
from .tree import Check, Document, Item, ParseError, Section

_md = MarkdownIt("commonmark").enable("table")
# Keeps backslash escapes and entities as tokens of their own: "Ops (2\\)" is a role named
# "Ops (2)", not Ops twice.
_md_escapes = MarkdownIt("commonmark").disable("text_join")

# The marker must be followed by whitespace or end the paragraph: "[x]foo" is plain text.
_TASK = re.compile(r"\[([ xX~!-])\](?=\s|$)")
_LIST_MARKER = re.compile(r"[-+*]|\d{1,9}[.)]")
_COMMENT = re.compile(r"<!--(.*?)-->", re.DOTALL)
_SECTION_FLAGS = {"optional": "optional", "after-go-live": "after_go_live"}
_SIGNOFF_FLAGS = {**_SECTION_FLAGS, "four-eyes": "four_eyes"}
_ROLE_COUNT = re.compile(r"\(\s*([+-]?\d+)\s*\)$")
MAX_APPROVERS = 20  # more is a typo ("(200)") rather than a team that size
_SIGNOFF_TITLES = {"sign-off", "sign off", "signoff"}
_LISTS = ("bullet_list", "ordered_list")

EMPTY = "the file is empty"
NO_TASKS = "no task items found: a checklist needs at least one `- [ ]` line"


def parse(text: str | bytes) -> Document:
    """Parse checklist Markdown. Bytes are decoded and repaired first."""
    if isinstance(text, bytes):
        text = decode(text)
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if "\x00" in text:
        raise ParseError("not a text file", None)
    if not text.strip():
        raise ParseError(EMPTY, None)
    text = _expand_leading_tabs(text)
    lines = text.split("\n")
    tokens = _md.parse(text)
    events = _Walker(lines).walk(_tree(tokens), len(lines))
    doc = _Assembler(lines, _code_lines(tokens)).build(events)
    if doc.item_count == 0 and not doc.roles:
        raise ParseError(NO_TASKS, None)
    return doc


# -- events ----------------------------------------------------------------------------


@dataclass
class _Heading:
    level: int
    content: str  # inline source
    line: int  # 0-based


@dataclass
class _Task:
    marker: str
    content: str  # inline source of the first paragraph, marker included
    line: int  # 0-based line of the list item
    parent: _Task | None


@dataclass
class _Block:
    start: int  # 0-based, end exclusive
    end: int
    dedent: int  # content column of the container the block sits in
    kind: str  # token type: paragraph, fence, html_block, bullet_list, ...
    fence: str = ""  # the opening fence of a fenced code block
    escape: bool = False  # a heading that must stay text where it is written


# -- pass 1: tokens -> events -------------------------------------------------------------


@dataclass
class _Node:
    """A block token with its children, so lists can be walked as the trees they are."""

    type: str
    token: Token
    children: list[_Node] = field(default_factory=list)
    inline: Token | None = None

    @property
    def start(self) -> int:
        return self.token.map[0]

    @property
    def end(self) -> int:
        return self.token.map[1]


def _tree(tokens: list[Token]) -> list[_Node]:
    root = _Node("root", Token("root", "", 0))
    stack = [root]
    for token in tokens:
        if token.nesting == 1:
            node = _Node(token.type.removesuffix("_open"), token)
            stack[-1].children.append(node)
            stack.append(node)
        elif token.nesting == -1:
            stack.pop()
        elif token.type == "inline":
            stack[-1].inline = token
        else:
            stack[-1].children.append(_Node(token.type, token))
    return root.children


def _task_marker(list_item: _Node) -> str | None:
    """The marker of a task list item, None for any other list item."""
    first = list_item.children[0] if list_item.children else None
    if first is None or first.type != "paragraph" or first.inline is None:
        return None
    match = _TASK.match(first.inline.content)
    return match.group(1) if match else None


def _has_task(node: _Node) -> bool:
    # Tables, blockquotes and HTML are leaves: a `[ ]` in them is text, not an item.
    if node.type == "list_item" and _task_marker(node) is not None:
        return True
    if node.type in ("bullet_list", "ordered_list", "list_item"):
        return any(_has_task(child) for child in node.children)
    return False


class _Walker:
    def __init__(self, lines: list[str]):
        self.lines = lines

    def walk(self, nodes: list[_Node], end: int) -> list[object]:
        return list(self._container(nodes, 0, None, start=0, end=end, top=True))

    def _container(self, nodes, column, parent, *, start, end, top=False):
        """Events for the child blocks of one container (the document or a list item)."""
        cursor = start
        for node in nodes:
            yield from self._gap(cursor, node.start, column)
            cursor = max(cursor, node.end)
            if node.type == "heading" and top:
                yield _Heading(int(node.token.tag[1]), node.inline.content, node.start)
            elif node.type in ("bullet_list", "ordered_list") and _has_task(node):
                yield from self._list(node, column, parent)
            else:
                fence = node.token.markup if node.type == "fence" else ""
                yield _Block(node.start, node.end, column, node.type, fence)
        yield from self._gap(cursor, end, column)

    def _gap(self, start, end, column):
        # Link reference definitions produce no token; keep their lines as a block anyway.
        while start < end and not self.lines[start].strip():
            start += 1
        if start < end:
            yield _Block(start, end, column, "reference")

    def _list(self, node, column, parent):
        plain_run: list[_Node] = []  # neighbouring list items without any task: one block

        def flush():
            if plain_run:
                yield _Block(plain_run[0].start, plain_run[-1].end, column, node.type)
                plain_run.clear()

        for item in node.children:
            if not _has_task(item):
                plain_run.append(item)
                continue
            yield from flush()
            item_column = self._content_column(item.start, column)
            marker = _task_marker(item)
            if marker is not None:
                task = _Task(marker, item.children[0].inline.content, item.start, parent)
                yield task
                first_end = item.children[0].end
                yield from self._container(
                    item.children[1:], item_column, task, start=first_end, end=item.end
                )
            else:
                # A plain list item holding tasks ("1. **Rollback**" over its steps): its own
                # lines up to the first list with tasks go to the body of whoever precedes.
                split = next(i for i, child in enumerate(item.children) if _has_task(child))
                head_end = item.children[split].start
                if head_end > item.start:
                    yield _Block(item.start, head_end, column, node.type)
                yield from self._container(
                    item.children[split:], item_column, parent, start=head_end, end=item.end
                )
        yield from flush()

    def _content_column(self, line_no: int, column: int) -> int:
        """Where a list item's content starts, by CommonMark's rule for the marker width."""
        line = self.lines[line_no]
        pos = column
        while pos < len(line) and line[pos] == " ":
            pos += 1
        match = _LIST_MARKER.match(line, pos)
        if not match:  # cannot happen for a list item line; stay safe rather than crash
            return column
        after = match.end()
        rest = line[after:]
        spaces = len(rest) - len(rest.lstrip(" "))
        if not rest.strip() or spaces > 4:
            return after + 1
        return after + spaces


# -- pass 2: events -> tree ---------------------------------------------------------------


@dataclass
class _Sink:
    """Where raw blocks go: a Document/Section/Item and the attribute that holds them."""

    target: object
    attribute: str
    is_item: bool = False
    blocks: list[_Block] = field(default_factory=list)


class _Assembler:
    def __init__(self, lines: list[str], code_lines: set[int]):
        self.lines = lines
        self.code_lines = code_lines

    def build(self, events: list[object]) -> Document:
        doc = Document(name=None)
        sinks = [_Sink(doc, "description")]
        sink = sinks[0]
        open_sections: list[Section] = []
        items: dict[int, Item] = {}  # id(_Task) -> Item, to find a task's parent item
        signoff: Section | None = None  # the current section when its tasks are roles
        under_heading = False  # nothing but flag comments seen since the last heading
        seen_heading = False

        for event in events:
            if isinstance(event, _Heading):
                title = " ".join(line.strip() for line in event.content.split("\n"))
                if not seen_heading and event.level == 1:
                    doc.name = title
                    seen_heading = True
                    continue
                seen_heading = True
                section = self._section(title, event)
                while open_sections and open_sections[-1].level >= section.level:
                    open_sections.pop()
                siblings = open_sections[-1].children if open_sections else doc.sections
                siblings.append(section)
                open_sections.append(section)
                signoff = section if _is_signoff(title) else None
                sink = _Sink(section, "body")
                sinks.append(sink)
                under_heading = True

            elif isinstance(event, _Task):
                under_heading = False
                if signoff is not None:
                    role, count = self._role(event)
                    if role and sink.attribute != "footer":
                        sink = _Sink(signoff, "footer")
                        sinks.append(sink)
                    if role:  # an empty "- [ ]" names nobody
                        signoff.roles.append(role)
                    if count > 1:
                        signoff.role_counts[role] = max(count, signoff.role_counts.get(role, 0))
                    continue
                item = self._item(event)
                items[id(event)] = item
                if event.parent is not None:
                    items[id(event.parent)].children.append(item)
                elif open_sections:
                    open_sections[-1].items.append(item)
                else:
                    doc.items.append(item)
                sink = _Sink(item, "body", is_item=True)
                sinks.append(sink)

            else:
                if under_heading and self._section_flags(event, open_sections[-1], signoff is not None):
                    continue
                under_heading = False
                if event.kind == "heading" and not sink.is_item:
                    # Nested under a sign-off role (the only way here); in the footer,
                    # written at the left margin, it would open a section.
                    event.escape = True
                sink.blocks.append(event)

        for each in sinks:
            self._fill(each)
        return doc

    # -- headings and sections

    def _section(self, title: str, event: _Heading) -> Section:
        section = Section(title="", level=event.level, line=event.line + 1)
        pieces = _split_comments(title)
        removed = set()
        for index, (_, comment, _) in enumerate(pieces):
            flag = _SECTION_FLAGS.get(comment.strip().lower()) if comment else None
            if flag:
                setattr(section, flag, True)
                removed.add(index)
        section.title = _without(pieces, removed).strip()
        return section

    def _section_flags(self, block: _Block, section: Section, signoff: bool) -> bool:
        """Read `<!-- optional -->` / `<!-- after-go-live -->` (and, under a Sign-Off
        heading, `<!-- four-eyes -->`) right under a heading."""
        if block.kind != "html_block":
            return False
        source = "\n".join(self.lines[block.start : block.end])
        known = _SIGNOFF_FLAGS if signoff else _SECTION_FLAGS
        flags = [known.get(c.strip().lower()) for c in _COMMENT.findall(source)]
        if not flags or None in flags or _COMMENT.sub("", source).strip():
            return False
        for flag in flags:
            setattr(section, flag, True)
        return True

    # -- task items

    def _item(self, task: _Task) -> Item:
        item = Item(text="", marker=_normal_marker(task.marker), line=task.line + 1)
        inline = task.content[3:]
        pieces = _split_comments(inline)

        def claim(comment: str, offset: int) -> bool:
            if _is_optional(comment):
                item.optional = True
                return True
            if annotations.is_annotation(comment):
                self._attach_check(item, comment, task.line + inline.count("\n", 0, offset) + 1)
                return True
            return False

        removed = {i for i, (_, comment, offset) in enumerate(pieces) if comment and claim(comment, offset)}
        lines = _without(pieces, removed).split("\n")
        item.text = _escape_open_comments("\n".join(line.strip() for line in lines if line.strip()))
        return item

    def _role(self, task: _Task) -> tuple[str, int]:
        """The role's name and how many different people must approve for it."""
        pieces = _split_comments(task.content[3:])
        for _, comment, _ in pieces:
            if comment and annotations.is_annotation(comment):
                raise ParseError("a sign-off role cannot carry a check", task.line + 1)
        removed = {i for i, (_, comment, _) in enumerate(pieces) if comment and _is_optional(comment)}
        inline = _without(pieces, removed)
        role = _plain_text(inline)
        match = _ROLE_COUNT.search(_countable_text(inline))
        if match is None:
            return role, 1
        name, raw = role[: match.start()].strip(), match.group(1)
        if not name:
            raise ParseError(f"the approver count ({raw}) needs a sign-off role name before it", task.line + 1)
        count = int(raw) if len(raw) <= 6 else None  # int() of a thousand digits raises
        if count is None or not 1 <= count <= MAX_APPROVERS:
            shown = raw if count is not None else raw[:6] + "..."
            raise ParseError(
                f"sign-off role {name!r} asks for {shown} approvers: "
                f"the count in parentheses must be from 1 to {MAX_APPROVERS}",
                task.line + 1,
            )
        return name, count

    def _attach_check(self, item: Item, comment: str, line: int) -> None:
        if item.check is not None:
            raise ParseError("more than one check annotation on one item", line)
        try:
            kind, raw = annotations.parse_annotation(comment)
        except ValueError as error:
            raise ParseError(str(error), line) from None
        # Imported here: the registry pulls in the check kinds, which parsing a file
        # without checks does not need.
        from checklists.verifications.registry import validate

        try:
            params = validate(kind, raw)
        except ValueError as error:
            message = str(error)
            if repr(kind) not in message:  # "unknown check kind 'ftp'" names it already
                message = f"{kind} check: {message}"
            raise ParseError(message, line) from None
        item.check = Check(kind=kind, params=dict(params))

    # -- bodies

    def _fill(self, sink: _Sink) -> None:
        text = ""
        previous: _Block | None = None
        for block in sink.blocks:
            source = self._source(block)
            if block.kind in ("paragraph", "html_block"):
                source = self._take_annotations(sink, block, source)
            if not source.strip():
                continue
            if previous is None:
                if sink.attribute == "footer" and source.startswith(" "):
                    # Written right after the role list, it would fall under the last role.
                    text = "<!-- -->\n\n"
            else:
                # Only blocks that touched in the same container may touch in the body.
                # Anything else between them (a blank line, the name's heading, a comment
                # taken out, the end of a list item) becomes one blank line: written into
                # one container, touching blocks can merge (HTML runs on to a blank line).
                touching = (
                    _content_end(self.lines, previous) == block.start
                    and previous.dedent == block.dedent
                )
                if touching:
                    text += "\n"
                elif previous.kind in _LISTS and source.startswith(" "):
                    # They were apart in the source (a heading or a comment between); next
                    # to each other the indented block would fall into the list's last
                    # item. An empty comment ends a list: CommonMark's own idiom.
                    text += "\n\n<!-- -->\n\n"
                else:
                    text += "\n\n"
            text += source
            previous = block
        setattr(sink.target, sink.attribute, text)

    def _source(self, block: _Block) -> str:
        """The block's lines: dedented, trailing blanks dropped, blank runs collapsed."""
        end = _content_end(self.lines, block)
        out: list[str] = []
        for number in range(block.start, end):
            line = _dedent(self.lines[number], block.dedent)
            if not line.strip():
                if out and out[-1] == "" and number not in self.code_lines:
                    continue
                line = ""
            out.append(line)
        if block.escape:
            # "## x" becomes "\## x", a setext underline "---" becomes "\---".
            last = out[-1]
            indent = len(last) - len(last.lstrip(" "))
            out[-1] = last[:indent] + "\\" + last[indent:]
        # An unclosed fence or HTML block runs to the end of its container; written
        # somewhere else it would swallow whatever follows it there. Close it.
        indent = out[0][: len(out[0]) - len(out[0].lstrip(" "))]
        if block.fence and not _closes_fence(out, block.fence):
            out.append(indent + block.fence)
        if block.kind == "html_block" and (closer := _missing_html_end("\n".join(out))):
            out.append(indent + closer)
        return "\n".join(out)

    def _take_annotations(self, sink: _Sink, block: _Block, source: str) -> str:
        """Move optional/check comments out of a body block and onto its item."""
        if block.kind == "paragraph":
            pieces = _split_comments(source)
        else:
            pieces = _html_comments(source)

        def claim(comment: str, offset: int) -> bool:
            line = block.start + source.count("\n", 0, offset) + 1
            if not sink.is_item:
                if comment.strip().startswith("check:"):
                    raise ParseError("a check annotation must belong to a task item", line)
                return False
            if _is_optional(comment):
                sink.target.optional = True
                return True
            if annotations.is_annotation(comment):
                self._attach_check(sink.target, comment, line)
                return True
            return False

        removed = {i for i, (_, comment, offset) in enumerate(pieces) if comment and claim(comment, offset)}
        return _without(pieces, removed) if removed else source


# -- small helpers --------------------------------------------------------------------------


def _comments(text: str):
    """(start, end, inside) of each HTML comment in inline Markdown, outside code spans.

    Code spans and backslash escapes are skipped so that `` `<!-- check: x -->` `` in an
    item's text stays text, as a Markdown viewer shows it. An unclosed `<!--` comes last,
    with `inside` None.
    """
    pos = 0
    while pos < len(text):
        if text[pos] == "\\":
            pos += 2
        elif text[pos] == "`":
            run = len(text[pos:]) - len(text[pos:].lstrip("`"))
            close = _closing_backticks(text, pos + run, run)
            pos = close if close is not None else pos + run
        elif text.startswith("<!--", pos):
            match = _COMMENT.match(text, pos)
            if not match:
                yield pos, pos + 4, None
                return
            yield pos, match.end(), match.group(1)
            pos = match.end()
        else:
            pos += 1


def _split_comments(text: str) -> list[tuple[str, str | None, int]]:
    """Split inline Markdown into (piece, comment-or-None, offset).

    `piece` is the source text; for a comment, `comment` is what is between `<!--` and `-->`.
    """
    pieces: list[tuple[str, str | None, int]] = []
    start = 0
    for begin, end, inside in _comments(text):
        if inside is None:
            break
        if begin > start:
            pieces.append((text[start:begin], None, start))
        pieces.append((text[begin:end], inside, begin))
        start = end
    if start < len(text):
        pieces.append((text[start:], None, start))
    return pieces


def _escape_open_comments(text: str) -> str:
    # Export appends annotations to the text; an unclosed "<!--" would swallow them.
    while unclosed := [begin for begin, _, inside in _comments(text) if inside is None]:
        text = text[: unclosed[0]] + "\\" + text[unclosed[0] :]
    return text


def _closing_backticks(text: str, pos: int, run: int) -> int | None:
    for match in re.finditer(r"`+", text[pos:]):
        if len(match.group()) == run:
            return pos + match.end()
    return None


def _html_comments(source: str) -> list[tuple[str, str | None, int]]:
    pieces: list[tuple[str, str | None, int]] = []
    start = 0
    for match in _COMMENT.finditer(source):
        if match.start() > start:
            pieces.append((source[start : match.start()], None, start))
        pieces.append((match.group(), match.group(1), match.start()))
        start = match.end()
    if start < len(source):
        pieces.append((source[start:], None, start))
    return pieces


def _is_optional(comment: str) -> bool:
    return comment.strip().lower() == "optional"


def _is_signoff(title: str) -> bool:
    plain = _plain_text(title).lower()
    # Drop leading emoji and symbols ("✅ Sign-Off") and trailing punctuation ("Sign-off:").
    plain = re.sub(r"^[\W_]+|[\W_]+$", "", plain)
    return " ".join(plain.split()) in _SIGNOFF_TITLES


def _plain_text(inline: str) -> str:
    """Inline Markdown as a reader sees it: `**Tech Lead**` and `[QA](url)` give the words."""
    words = []
    for token in _md.parseInline(inline)[0].children or []:
        if token.type in ("text", "text_special", "code_inline"):
            words.append(token.content)
        elif token.type in ("softbreak", "hardbreak"):
            words.append(" ")
        elif token.type == "image":
            words.append(token.content)
    return " ".join("".join(words).split())


def _countable_text(inline: str) -> str:
    """_plain_text() with every character that could not write a count masked out: those
    from backslash escapes, entities, code and images. Same length, same positions."""
    words = []
    for token in _md_escapes.parseInline(inline)[0].children or []:
        if token.type == "text":
            words.append(token.content)
        elif token.type in ("softbreak", "hardbreak"):
            words.append(" ")
        elif token.type in ("text_special", "code_inline", "image"):
            words.append(re.sub(r"\S", "\x00", token.content))
    return " ".join("".join(words).split())


def _normal_marker(marker: str) -> str:
    return "x" if marker == "X" else marker


def _without(pieces: list[tuple[str, str | None, int]], removed: set[int]) -> str:
    """Rejoin split text without the removed comments, the spaces around them, or the
    lines they leave empty (an empty line would split a paragraph or end an HTML block)."""
    gone = "\x00"  # parse() refuses NUL, so it cannot clash with the text
    text = "".join(gone if i in removed else piece for i, (piece, _, _) in enumerate(pieces))
    lines = []
    for line in text.split("\n"):
        if gone in line:
            if not line.replace(gone, "").strip():
                continue
            indent = line[: len(line) - len(line.lstrip(" "))]
            line = indent + re.sub(r"[ \t]*\x00[ \t\x00]*", " ", line[len(indent) :]).strip()
        lines.append(line)
    return "\n".join(lines)


def _content_end(lines: list[str], block: _Block) -> int:
    end = block.end
    while end > block.start and not lines[end - 1].strip():
        end -= 1
    return end


def _dedent(line: str, column: int) -> str:
    spaces = len(line) - len(line.lstrip(" "))
    # A line left of the column is a lazy continuation; its own indentation is what keeps
    # it from starting a block ("    - [ ] x" is text after a paragraph), so it stays.
    return line[column:] if spaces >= column else line


def _closes_fence(lines: list[str], fence: str) -> bool:
    if len(lines) < 2:
        return False
    last = lines[-1].strip()
    indent = len(lines[-1]) - len(lines[-1].lstrip(" "))
    return indent < 4 and len(last) >= len(fence) and set(last) == {fence[0]}


# CommonMark's HTML blocks that end only at a given string (the others end at a blank line).
_HTML_UNTIL = [
    (re.compile(r"<!\[CDATA\["), "]]>"),
    (re.compile(r"<!--"), "-->"),
    (re.compile(r"<\?"), "?>"),
    (re.compile(r"<![A-Za-z]"), ">"),
    (re.compile(r"<(pre|script|style|textarea)(?=[\s>]|$)", re.IGNORECASE), None),
]


def _missing_html_end(source: str) -> str | None:
    """The closing string an HTML block lacks, if it is of a kind that needs one."""
    text = source.lstrip()
    for opening, closer in _HTML_UNTIL:
        match = opening.match(text)
        if not match:
            continue
        if closer is None:  # any of the four end tags ends a <pre>/<script>/... block
            rest = text[match.end() :].lower()
            if any(f"</{tag}>" in rest for tag in ("pre", "script", "style", "textarea")):
                return None
            return f"</{match.group(1).lower()}>"
        # Searching from 2 lets "<!-->" and "<!--->" count as closed comments.
        search_from = 2 if closer == "-->" else match.end()
        return None if closer in text[search_from:] else closer
    return None


def _code_lines(tokens: list[Token]) -> set[int]:
    """Lines inside code blocks, where blank lines are content and must not be collapsed."""
    inside: set[int] = set()
    for token in tokens:
        if token.type in ("fence", "code_block") and token.map:
            inside.update(range(token.map[0] + 1, token.map[1]))
    return inside


_LEADING = re.compile(r"(?:[ \t]*(?:[-+*>]|\d{1,9}[.)])(?=[ \t]))*[ \t]*")


def _expand_leading_tabs(text: str) -> str:
    """Turn tabs in the indentation (and after list markers) into spaces, 4-column stops.

    Bodies are re-indented with spaces on export, so a tab-indented line must already be
    spaces for dedenting to keep it where it was. In fenced code only the tabs left of the
    fence's own column are indentation; the others are code (a Makefile recipe needs them)
    and stay, as export only ever adds spaces in front of them. Except before a line that
    looks like a closing fence: behind those spaces the tab would shrink and close the fence.
    """
    if "\t" not in text:
        return text
    lines = text.split("\n")
    fence_column: dict[int, int] = {}  # fenced content line -> column of its fence
    for token in _md.parse(text):
        if token.type == "fence" and token.map:
            column = len(_LEADING.match(lines[token.map[0]]).group().expandtabs(4))
            for number in range(token.map[0] + 1, token.map[1]):
                fence_column[number] = column
    for number, line in enumerate(lines):
        if "\t" not in line:
            continue
        if number in fence_column and not re.fullmatch(r"\s*(`+|~+)\s*", line):
            lines[number] = _expand_indent(line, fence_column[number])
        else:
            prefix = _LEADING.match(line).group()
            lines[number] = prefix.expandtabs(4) + line[len(prefix) :]
    return "\n".join(lines)


def _expand_indent(line: str, up_to: int) -> str:
    """Expand the tabs of the leading whitespace that start before column `up_to`."""
    column = pos = 0
    while pos < len(line) and line[pos] in " \t" and column < up_to:
        column += 4 - column % 4 if line[pos] == "\t" else 1
        pos += 1
    return " " * column + line[pos:]
