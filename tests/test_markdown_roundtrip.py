"""Export is the inverse of import: parse(render(doc)) == doc, and exporting twice gives the
same bytes. Checked on every real checklist we have and on generated trees."""

import functools
import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checklists.markdown import (
    Check,
    Document,
    Item,
    ParseError,
    Section,
    parse,
    parse_bytes,
    render,
)
from checklists.markdown.annotations import format_annotation, parse_annotation
from checklists.verifications.registry import validate

SHARED = Path(os.environ.get("DEPLOYCHECK_SHARED_DIR") or Path(__file__).resolve().parents[2] / "shared")
FILES = sorted((SHARED / "seeds").glob("*.md")) + sorted(
    path
    for path in (SHARED / "corpus").glob("*.md")
    if path.name not in ("README.md", "pov-production-ready-tables.md")
)
TASK_LINE = re.compile(r"\s*(?:[-*+]|\d+[.)]) \[[ x~!-]\]")


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.name)
def test_real_checklists_survive_export_and_reimport(path):
    first = parse_bytes(path.read_bytes())
    exported = render(first)
    second = parse(exported)

    assert second == first
    assert render(second) == exported
    assert exported.endswith("\n") and not exported.endswith("\n\n")


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.name)
def test_export_holds_one_task_line_per_item_and_role(path):
    doc = parse_bytes(path.read_bytes())

    exported = render(doc)

    assert count_task_lines(exported) == doc.item_count + len(doc.roles)


def count_task_lines(text):
    """Task lines outside fenced code, counted line by line as the corpus README counts them."""
    count, fence = 0, None
    for line in text.split("\n"):
        stripped = line.strip()
        if fence:
            if stripped and set(stripped) == {fence[0]} and len(stripped) >= len(fence):
                fence = None
        elif match := re.match(r"(`{3,}|~{3,})", stripped):
            fence = match.group(1)
        elif TASK_LINE.match(line):
            count += 1
    return count


def test_export_is_canonical_markdown():
    doc = Document(
        name="Shop launch",
        description="Run this before every release.",
        sections=[
            Section(
                title="Checks",
                level=2,
                optional=True,
                after_go_live=True,
                items=[
                    Item(
                        text="Site is up\nand fast",
                        marker="x",
                        optional=True,
                        check=Check("http", {"url": "https://shop.example.com", "contains": "Welcome back"}),
                        body="```sh\ncurl -I https://shop.example.com\n```",
                        children=[Item(text="Cache warm", marker="~")],
                    )
                ],
                children=[Section(title="Deep", level=4, items=[Item(text="Dig")])],
            ),
            Section(title="Sign-Off", level=2, body="Ask them.", roles=["Tech Lead", "QA"], footer="Date: ____"),
        ],
    )

    assert render(doc) == (
        "# Shop launch\n"
        "\n"
        "Run this before every release.\n"
        "\n"
        "## Checks\n"
        "<!-- optional -->\n"
        "<!-- after-go-live -->\n"
        "\n"
        "- [x] Site is up\n"
        '  and fast <!-- optional --> <!-- check: http url=https://shop.example.com contains="Welcome back" -->\n'
        "\n"
        "  ```sh\n"
        "  curl -I https://shop.example.com\n"
        "  ```\n"
        "\n"
        "  - [~] Cache warm\n"
        "\n"
        "#### Deep\n"
        "\n"
        "- [ ] Dig\n"
        "\n"
        "## Sign-Off\n"
        "\n"
        "Ask them.\n"
        "\n"
        "- [ ] Tech Lead\n"
        "- [ ] QA\n"
        "\n"
        "Date: ____\n"
    )
    assert parse(render(doc)) == doc


def test_role_counts_and_four_eyes_are_written_back():
    doc = Document(
        name="Payments",
        items=[Item(text="Ship")],
        sections=[
            Section(
                title="Sign-Off",
                level=2,
                four_eyes=True,
                roles=["Ops", "Security Lead", "QA"],
                role_counts={"Ops": 2, "Security Lead": 3},
            )
        ],
    )

    exported = render(doc)

    assert exported == (
        "# Payments\n"
        "\n"
        "- [ ] Ship\n"
        "\n"
        "## Sign-Off\n"
        "<!-- four-eyes -->\n"
        "\n"
        "- [ ] Ops (2)\n"
        "- [ ] Security Lead (3)\n"
        "- [ ] QA\n"
    )
    assert parse(exported) == doc
    assert render(parse(exported)) == exported


def test_imported_counts_and_four_eyes_survive_export_and_reimport():
    first = parse(
        "# Payments\n\n## ✅ Sign-off\n\n<!-- four-eyes -->\n\n"
        "- [x] **Security Lead** (2)\n- [ ] Ops (1)\n- [ ] Ops (3)\n- [ ] QA(2) <!-- optional -->\n"
    )

    exported = render(first)
    second = parse(exported)

    assert second == first
    assert (second.sections[0].roles, second.role_counts, second.four_eyes) == (
        ["Security Lead", "Ops", "Ops", "QA"],
        {"Security Lead": 2, "Ops": 3, "QA": 2},
        True,
    )
    assert render(second) == exported


def test_a_role_name_ending_in_a_number_in_parentheses_is_not_read_back_as_a_count():
    doc = Document(
        name=None,
        sections=[
            Section(
                title="Sign-Off",
                level=2,
                roles=["Shift (1)", "On call (24)", "Team (2)"],
                role_counts={"Team (2)": 3},
            )
        ],
    )

    exported = render(doc)

    assert "- [ ] Shift (1\\)\n- [ ] On call (24\\)\n- [ ] Team (2\\) (3)\n" in exported
    assert parse(exported) == doc
    assert render(parse(exported)) == exported


def test_a_paragraph_body_cannot_swallow_the_next_line():
    # Written without blank lines, "---" under text would become a heading and the next
    # item a lazy continuation of the body.
    doc = Document(name=None, items=[Item(text="one", body="Some words"), Item(text="two", body="---")])

    assert parse(render(doc)) == doc


# -- generated trees -----------------------------------------------------------------------

# Words a checklist author might write, inline Markdown and non-ASCII included. Each starts
# with a letter or inline markup, so no line of text can turn into a block (a heading, a list,
# a quote, a table, a setext underline) when it is written at the start of a line.
WORDS = st.sampled_from(
    [
        "deploy", "the", "database", "Check", "DNS", "TLS", "v2.1", "café", "Größe", "日本語",
        "🚀", "✅", "naïve", "“quoted”", "**bold**", "_em_", "`make test`", "[docs](https://example.com/a)",
        "<br>", "&amp;", "a*b", "x<y", "snake_case", "C:\\path", "[ ]", "100%", "(maybe)", "→",
    ]
)
LINE = st.lists(WORDS, min_size=1, max_size=6).map(" ".join).filter(lambda s: s[0].isalpha() or s[0] in "*_`[<&“")


def _text(lines):
    return "\n".join(lines)


# Item text: one or two lines. Empty text is fine ("- [ ]" alone is still a task).
ITEM_TEXT = st.one_of(st.just(""), LINE, st.lists(LINE, min_size=2, max_size=2).map(_text))
# Titles are one non-empty line: "##" alone reads back as an empty title but a title made only
# of "#" or ending in " #" is an ATX closing sequence, and the words above never produce one.
TITLE = LINE.filter(lambda s: not re.fullmatch(r"(?i)[\W_]*sign[\s-]?off[\W_]*", s))

PARAGRAPH = st.lists(LINE, min_size=1, max_size=3).map(_text)
FENCE = st.sampled_from(
    [
        "```\n- [ ] not a task\nrm -rf build\n```",
        "```yaml\nkey: value\n\n\n# two blank lines above are code\n```",
        "~~~\n* [x] also not a task\n~~~",
    ]
)
TABLE = st.just("| step | done |\n| --- | --- |\n| [ ] backup | no |")
QUOTE = PARAGRAPH.map(lambda p: "\n".join("> " + line for line in p.split("\n")))
# A bullet whose words start with "[ ]" is a task, not body text.
BULLET = LINE.filter(lambda s: not s.startswith("[ ]"))
BULLETS = st.lists(BULLET, min_size=1, max_size=3).map(lambda lines: "\n".join("- " + line for line in lines))
NUMBERED = st.just("1. first step\n2. second step")
HTML = st.just("<details>\n<summary>More</summary>\n\nHidden words.\n\n</details>")
BLOCK = st.one_of(PARAGRAPH, FENCE, TABLE, QUOTE, BULLETS, NUMBERED, HTML)
BODY = st.one_of(st.just(""), st.lists(BLOCK, min_size=1, max_size=2).map("\n\n".join))

# The last two end like a count but are names: export must keep them names.
ROLE = st.sampled_from(
    ["Tech Lead", "Security Lead", "DevOps Engineer", "QA", "Product Manager", "R&D Lead", "Shift (1)", "On call (24)"]
)


@st.composite
def roles_and_counts(draw):
    """Roles of one Sign-Off section, and how many approvers some of them need."""
    roles = draw(st.lists(ROLE, min_size=1, max_size=3))
    counts = {role: draw(st.integers(min_value=2, max_value=20)) for role in roles if draw(st.booleans())}
    return roles, counts

RAW_CHECKS = [
    ("http", {"url": "https://example.com/health"}),
    ("http", {"url": "https://{{host}}/status", "status": "2xx", "contains": "all good"}),
    ("tcp", {"host": "db.internal", "port": "5432", "probe": "postgres"}),
    ("tls", {"host": "example.com", "min_days": "14"}),
    ("dns", {"name": "example.com", "type": "A"}),
]
# The tree holds params as the registry normalised them.
CHECK = st.one_of(
    st.none(), st.sampled_from(RAW_CHECKS).map(lambda kc: Check(kc[0], validate(kc[0], kc[1])))
)


@functools.cache  # building strategies on every draw costs more than the test itself
def items(depth=0):
    children = st.just([]) if depth >= 2 else st.lists(items(depth + 1), max_size=2)
    return st.builds(
        Item,
        text=ITEM_TEXT,
        body=BODY,
        marker=st.sampled_from([" ", "x", "~", "!", "-"]),
        optional=st.booleans(),
        check=CHECK,
        children=children,
    )


@functools.cache
def sections(level, depth=0):
    """Sections of one level; their children share one deeper level.

    Siblings share a level because a later sibling with a higher level would read back as a
    child of the one before it (nesting is by level, as in the file).
    """
    child_level = st.integers(min_value=level + 1, max_value=min(6, level + 2))
    children = (
        st.just([])
        if depth >= 2 or level >= 6
        else child_level.flatmap(lambda lvl: st.lists(sections(lvl, depth + 1), max_size=2))
    )
    normal = st.builds(
        Section,
        title=TITLE,
        level=st.just(level),
        body=BODY,
        optional=st.booleans(),
        after_go_live=st.booleans(),
        items=st.lists(items(), max_size=2),
        children=children,
    )
    # A Sign-Off section's tasks are roles, so it holds no items; the footer is what follows
    # the roles, so without roles it would read back as body.
    signoff = roles_and_counts().flatmap(
        lambda roles: st.builds(
            Section,
            title=st.sampled_from(["Sign-Off", "✅ Sign-off"]),
            level=st.just(level),
            body=BODY,
            roles=st.just(roles[0]),
            role_counts=st.just(roles[1]),
            footer=BODY,
            four_eyes=st.booleans(),
            children=children,
        )
    )
    # Without roles a Sign-Off section still says whether four eyes are needed.
    signoff_without_roles = st.builds(
        Section,
        title=st.just("Sign-Off"),
        level=st.just(level),
        body=BODY,
        four_eyes=st.booleans(),
        children=children,
    )
    return st.one_of(normal, normal, signoff, signoff_without_roles)


@st.composite
def documents(draw):
    name = draw(st.one_of(st.none(), TITLE))
    # Without a name the first heading must not be a "# ": it would be read as the name.
    top_level = draw(st.integers(min_value=1 if name is not None else 2, max_value=3))
    doc = Document(
        name=name,
        description=draw(BODY),
        items=draw(st.lists(items(), max_size=2)),
        sections=draw(st.lists(sections(top_level), max_size=3)),
    )
    if doc.item_count == 0 and not doc.roles:
        # A checklist with no task at all is refused on import.
        doc.items.append(draw(items()))
    return doc


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_generated_checklists_survive_export_and_reimport(doc):
    exported = render(doc)

    assert parse(exported) == doc
    assert render(parse(exported)) == exported


# -- arbitrary Markdown ------------------------------------------------------------------------

# Lines real checklists are made of, in every indentation, shuffled into nonsense: nesting
# that breaks off, lazy lines, unclosed fences and comments, tabs. Whatever imports must come
# back the same after an export.
INDENT = st.sampled_from(["", "", "", " ", "  ", "   ", "    ", "      ", "\t", "\t\t"])
FRAGMENT = st.sampled_from(
    [
        "- [ ] task", "* [x] done", "1. [ ] numbered", "3) [~] going", "-\t[ ] tabbed",
        "- [ ] with <!-- optional -->", "- [ ] site <!-- check: http url=https://example.com -->",
        "<!-- check: tcp host=db.example.com port=5432 -->", "- [ ] `code` [link](https://x.y)",
        "- plain", "+ plain", "2. step", "-", "```", "```sh", "~~~", "````", "    code", "# Name",
        "## Section", "### Deeper", "## Sign-Off", "- [ ] **Tech Lead**", "Para text", "more text",
        "- [ ] Ops (2)", "- [ ] **Security Lead** (3)", "- [ ] Shift \\(1\\)", "- [ ] QA (0)", "<!-- four-eyes -->",
        "---", "===", "* * *", "> quote", "> - [ ] quoted", "| a | b |", "|---|---|", "<div>",
        "</div>", "<pre>", "<script>", "</pre>", "<!-- optional -->", "<!-- after-go-live -->",
        "<!-- note", "-->", "<!-- -->", "[ref]: https://x.y", "text `unclosed", "",
    ]
)
MESSY = st.lists(st.tuples(INDENT, FRAGMENT).map("".join), min_size=1, max_size=30).map(
    lambda lines: "\n".join(lines) + "\n"
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MESSY)
def test_any_markdown_reimports_the_same_after_export(text):
    try:
        first = parse(text)
    except ParseError:
        return  # refusing is fine; importing differently after an export is not
    exported = render(first)

    assert parse(exported) == first
    assert render(parse(exported)) == exported


# -- the check annotation ----------------------------------------------------------------------


def test_annotation_values_are_quoted_only_when_needed():
    formatted = format_annotation(
        "http", {"url": "https://example.com/?a=b", "contains": 'say "hi" \\ bye', "method": "GET", "x": ""}
    )

    assert formatted == (
        '<!-- check: http url="https://example.com/?a=b" contains="say \\"hi\\" \\\\ bye" method=GET x="" -->'
    )


VALUE = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=20).filter(
    lambda v: "-->" not in v
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True), VALUE, max_size=4))
def test_any_annotation_reads_back_as_written(params):
    assert parse_annotation(format_annotation("http", params)) == ("http", params)
