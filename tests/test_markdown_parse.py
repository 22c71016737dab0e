"""Reading checklist Markdown the way a template author expects it to be read."""

import os
import re
from pathlib import Path

import pytest

from checklists.markdown import ParseError, parse, parse_bytes

SHARED = Path(os.environ.get("DEPLOYCHECK_SHARED_DIR") or Path(__file__).resolve().parents[2] / "shared")
SEEDS = SHARED / "seeds"
CORPUS = SHARED / "corpus"


def corpus_table() -> dict[str, tuple[int, int]]:
    """file -> (markers, headings) as the corpus README counts them."""
    rows = {}
    for line in (CORPUS / "README.md").read_text().splitlines():
        match = re.match(r"\| ([\w.-]+\.md) \| (\d+) \| (\d+) \|", line)
        if match:
            rows[match.group(1)] = (int(match.group(2)), int(match.group(3)))
    return rows


def items_of(doc):
    return [item for item, _ in doc.iter_items()]


def section(doc, title):
    return next(s for s in doc.iter_sections() if s.title == title)


# -- the real files ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, items, roles",
    [
        ("dreamcatcher-production.md", 253, []),
        ("saas-chat-production.md", 301, []),
        ("llm-gateway-production.md", 204, ["Tech Lead", "DevOps Engineer", "Security Lead", "Product Manager"]),
    ],
)
def test_seed_checklists_import_with_every_task(name, items, roles):
    doc = parse_bytes((SEEDS / name).read_bytes())

    assert doc.name == "Production Deployment Checklist"
    assert doc.item_count == items
    assert doc.roles == roles


@pytest.mark.parametrize("name", sorted(corpus_table()))
def test_corpus_checklists_count_like_the_readme(name):
    markers, headings = corpus_table()[name]
    data = (CORPUS / name).read_bytes()
    if markers == 0:
        with pytest.raises(ParseError, match="no task items found"):
            parse_bytes(data)
        return

    doc = parse_bytes(data)

    assert doc.item_count + len(doc.roles) == markers
    assert doc.section_count == headings


def test_table_cell_checkboxes_are_not_tasks():
    with pytest.raises(ParseError) as caught:
        parse_bytes((CORPUS / "pov-production-ready-tables.md").read_bytes())

    assert str(caught.value) == "no task items found: a checklist needs at least one `- [ ]` line"


def test_status_key_legend_counts_as_items():
    doc = parse_bytes((SEEDS / "saas-chat-production.md").read_bytes())

    legend = items_of(doc)[-4:]

    assert [(item.marker, item.text) for item in legend] == [
        (" ", "Not started"),
        ("x", "Completed"),
        ("~", "In progress"),
        ("!", "Blocked/Issue"),
    ]


def test_signoff_section_without_tasks_sets_no_role():
    doc = parse_bytes((SEEDS / "saas-chat-production.md").read_bytes())

    signoff = section(doc, "Sign-Off")

    assert signoff.roles == []
    assert "**Deployment Completed By:**" in signoff.body
    assert doc.roles == []


def test_signoff_entries_are_roles_not_items():
    doc = parse_bytes((SEEDS / "llm-gateway-production.md").read_bytes())

    signoff = section(doc, "Sign-Off")

    assert signoff.items == []
    assert signoff.body == "Before marking as complete, get sign-off from:"
    assert signoff.roles == ["Tech Lead", "DevOps Engineer", "Security Lead", "Product Manager"]
    assert signoff.footer.startswith("**Deployment Date:** _________________")
    assert signoff.footer.endswith("**Last Updated:** 2024-01-04")
    assert "Tech Lead" not in [item.text for item in items_of(doc)]


def test_seed_nesting_follows_indentation():
    doc = parse_bytes((SEEDS / "llm-gateway-production.md").read_bytes())

    database = section(doc, "Database")
    tables = next(item for item in database.items if item.text == "All required tables exist:")

    assert [child.text for child in tables.children][:2] == ["`users`", "`api_keys`"]
    assert len(tables.children) == 8
    assert section(doc, "Pre-Deployment").children[1] is database


def test_a_file_without_a_top_heading_has_no_name():
    doc = parse_bytes((CORPUS / "front-end-checklist.md").read_bytes())

    assert doc.name is None
    assert doc.description.startswith('<h1 align="center">')


def test_reference_definitions_are_kept():
    doc = parse_bytes((CORPUS / "front-end-checklist.md").read_bytes())

    everything = "\n".join([doc.description, *(i.body for i in items_of(doc)), *(s.body for s in doc.iter_sections())])

    # Item texts use `![Low][low_img]`; without the definitions the badges would break.
    assert "[low_img]: https://front-end-checklist.now.sh/low.svg" in everything


# -- task items ----------------------------------------------------------------------------


def test_every_list_style_makes_a_task():
    doc = parse(
        "# Launch\n\n"
        "* [ ] star bullet\n"
        "- [ ] dash bullet\n"
        "+ [ ] plus bullet\n"
        "1. [ ] numbered with a dot\n"
        "1) [ ] numbered with a paren\n"
    )

    assert [item.text for item in doc.items] == [
        "star bullet",
        "dash bullet",
        "plus bullet",
        "numbered with a dot",
        "numbered with a paren",
    ]


def test_star_and_dash_tasks_mixed_in_one_list_are_all_items():
    doc = parse("- [ ] first\n* [ ] second\n- [ ] third\n  * [ ] nested star\n")

    assert [(item.text, depth) for item, depth in doc.iter_items()] == [
        ("first", 0),
        ("second", 0),
        ("third", 0),
        ("nested star", 1),
    ]


def test_markers_record_the_state_of_a_filled_in_checklist():
    doc = parse("- [ ] todo\n- [x] done\n- [X] done too\n- [~] going\n- [!] stuck\n- [-] not needed\n")

    assert [item.marker for item in doc.items] == [" ", "x", "x", "~", "!", "-"]


def test_a_marker_glued_to_text_is_not_a_task():
    doc = parse("- [ ] real\n- [x]glued\n- [?] unknown\n")

    assert [item.text for item in doc.items] == ["real"]
    assert doc.items[0].body == "- [x]glued\n- [?] unknown"


def test_item_text_keeps_inline_markdown():
    doc = parse("- [ ] Run `make check` on **all** [hosts](https://example.com/hosts) — café ✅\n")

    assert doc.items[0].text == "Run `make check` on **all** [hosts](https://example.com/hosts) — café ✅"


def test_a_wrapped_item_text_keeps_its_lines():
    doc = parse("- [ ] Rotate the keys\n  and tell the team\n")

    assert doc.items[0].text == "Rotate the keys\nand tell the team"


def test_checkboxes_in_code_fences_are_not_items():
    doc = parse(
        "- [ ] Write the deploy script\n"
        "  ```bash\n"
        "  - [ ] not a task, a bash comment\n"
        "  ```\n"
        "- [ ] Review it\n"
        "\n"
        "      - [ ] indented code, not a task\n"
        "\n"
        "~~~\n"
        "- [x] inside a tilde fence\n"
        "~~~\n"
    )

    assert [item.text for item in doc.items] == ["Write the deploy script", "Review it"]
    assert doc.items[0].body == "```bash\n- [ ] not a task, a bash comment\n```"
    assert doc.items[1].body == "    - [ ] indented code, not a task\n\n~~~\n- [x] inside a tilde fence\n~~~"


def test_checkboxes_in_quotes_tables_and_html_are_not_items():
    doc = parse(
        "- [ ] the only task\n\n"
        "> - [ ] quoted\n\n"
        "| done | what |\n| --- | --- |\n| [ ] | cell |\n\n"
        "<div>\n- [ ] in html\n</div>\n"
    )

    assert doc.item_count == 1
    assert "> - [ ] quoted" in doc.items[0].body
    assert "| [ ] | cell |" in doc.items[0].body
    assert "<div>\n- [ ] in html\n</div>" in doc.items[0].body


def test_text_after_an_item_is_its_body():
    doc = parse(
        "## Database\n\n"
        "Read this first.\n\n"
        "- [ ] Back up\n\n"
        "  Use the nightly job:\n\n"
        "  ```sh\n"
        "  pg_dump prod > prod.sql\n"
        "\n"
        "\n"
        "  gzip prod.sql\n"
        "  ```\n"
        "  - [ ] Verify the dump\n\n"
        "Check the size too.\n"
    )
    database = doc.sections[0]
    backup = database.items[0]

    assert database.body == "Read this first."
    assert backup.body == "Use the nightly job:\n\n```sh\npg_dump prod > prod.sql\n\n\ngzip prod.sql\n```"
    # The last item in reading order takes what follows, even at a lower indentation.
    assert backup.children[0].body == "Check the size too."


def test_blank_lines_between_blocks_collapse_to_one():
    doc = parse("- [ ] Item\n\n  first\n\n\n\n  second\n")

    assert doc.items[0].body == "first\n\nsecond"


def test_tasks_under_a_plain_numbered_step_keep_the_step_text():
    doc = parse(
        "## Rollback\n\n"
        "1. **Immediate rollback**\n"
        "   - [ ] Revert the release\n"
        "   - [ ] Restore the database\n"
        "2. **Tell people**\n"
        "   - [ ] Post on the status page\n"
    )
    rollback = doc.sections[0]

    assert [item.text for item in rollback.items] == [
        "Revert the release",
        "Restore the database",
        "Post on the status page",
    ]
    assert rollback.body == "1. **Immediate rollback**"
    assert rollback.items[1].body == "2. **Tell people**"


def test_a_task_under_a_plain_bullet_inside_a_task_is_its_child():
    doc = parse("- [ ] Ship\n  - Frontend\n    - [ ] Build assets\n")

    ship = doc.items[0]

    assert [child.text for child in ship.children] == ["Build assets"]
    assert ship.body == "- Frontend"


def test_tab_indented_tasks_nest():
    doc = parse("- [ ] parent\n\t- [ ] child\n\t\t- [ ] grandchild\n")

    assert [(item.text, depth) for item, depth in doc.iter_items()] == [
        ("parent", 0),
        ("child", 1),
        ("grandchild", 2),
    ]


def test_item_lines_point_at_the_source():
    doc = parse("# N\n\n- [ ] one\n\n## S\n\n- [ ] two\n  - [ ] three\n")

    assert [item.line for item, _ in doc.iter_items()] == [3, 7, 8]
    assert doc.sections[0].line == 5


def test_tabs_in_a_makefile_snippet_are_kept():
    doc = parse("- [ ] Add the target\n\n```make\ndeploy:\n\tkubectl apply -f k8s/\n```\n")

    assert doc.items[0].body == "```make\ndeploy:\n\tkubectl apply -f k8s/\n```"


def test_an_unclosed_fence_is_closed_so_it_cannot_swallow_the_next_task():
    doc = parse("- [ ] Run the script\n  ```sh\n  ./deploy.sh\n- [ ] Check the logs\n")

    assert doc.items[0].body == "```sh\n./deploy.sh\n```"
    assert doc.items[1].text == "Check the logs"


# -- sections ----------------------------------------------------------------------------


def test_name_description_and_nested_sections():
    doc = parse(
        "Badge line\n\n"
        "# Shop launch\n\n"
        "What this is for.\n\n"
        "## Before\n\n"
        "### Database\n\n- [ ] Migrate\n\n"
        "#### Replicas\n\n- [ ] Check lag\n\n"
        "### Cache\n\n- [ ] Warm\n\n"
        "## After\n\n- [ ] Watch\n\n"
        "# Appendix\n\n- [ ] Archive\n"
    )

    assert doc.name == "Shop launch"
    assert doc.description == "Badge line\n\nWhat this is for."
    assert [(s.title, s.level) for s in doc.sections] == [("Before", 2), ("After", 2), ("Appendix", 1)]
    before = doc.sections[0]
    assert [(s.title, s.level) for s in before.children] == [("Database", 3), ("Cache", 3)]
    assert before.children[0].children[0].title == "Replicas"
    assert doc.section_count == 6


def test_root_items_come_before_the_first_section():
    doc = parse("# N\n\n- [ ] root task\n\n## S\n\n- [ ] section task\n")

    assert [item.text for item in doc.items] == ["root task"]
    assert [item.text for item in doc.sections[0].items] == ["section task"]


def test_setext_headings_are_headings():
    doc = parse("Release\n=======\n\nPrepare\n-------\n\n- [ ] Tag it\n")

    assert doc.name == "Release"
    assert doc.sections[0].title == "Prepare"
    assert doc.sections[0].level == 2


def test_a_heading_inside_an_item_is_part_of_its_body():
    doc = parse("## S\n\n- [ ] Item\n\n  ### Notes\n\n  text\n")

    assert doc.section_count == 1
    assert doc.sections[0].items[0].body == "### Notes\n\ntext"


@pytest.mark.parametrize("title", ["Sign-Off", "sign off", "Signoff", "✅ Sign-Off", "**Sign-off**", "📝 SIGN-OFF:"])
def test_signoff_title_variants(title):
    doc = parse(f"## {title}\n\n- [ ] Tech Lead\n")

    assert doc.roles == ["Tech Lead"]
    assert doc.item_count == 0


@pytest.mark.parametrize("title", ["Sign-Off Checklist", "Final sign-off", "Signing off"])
def test_titles_that_only_mention_signoff_are_normal_sections(title):
    doc = parse(f"## {title}\n\n- [ ] Tech Lead\n")

    assert doc.roles == []
    assert doc.item_count == 1


def test_notes_under_a_role_stay_in_the_footer():
    doc = parse("## Sign-Off\n\n- [ ] Tech Lead\n  - Name: ____\n  - Date: ____\n- [ ]\n\nSigned on paper.\n")

    signoff = doc.sections[0]

    assert signoff.roles == ["Tech Lead"]  # an empty "- [ ]" names nobody
    assert signoff.footer == "- Name: ____\n- Date: ____\n\nSigned on paper."


def test_roles_lose_their_inline_markup():
    doc = parse("## Sign-Off\n\n- [ ] **Tech Lead**\n- [x] [QA Lead](https://example.com/qa)\n- [ ] `SRE` _on call_\n- [ ] Tech Lead\n")

    assert doc.sections[0].roles == ["Tech Lead", "QA Lead", "SRE on call", "Tech Lead"]
    assert doc.roles == ["Tech Lead", "QA Lead", "SRE on call"]


# -- how many approvers a role needs -----------------------------------------------------------


def test_role_with_count_needs_that_many_approvers_in_the_template():
    doc = parse("## Sign-Off\n\n- [ ] Ops (2)\n- [ ] **Security Lead** (3)\n- [ ] Tech Lead\n")

    signoff = doc.sections[0]

    assert signoff.roles == ["Ops", "Security Lead", "Tech Lead"]
    assert signoff.role_counts == {"Ops": 2, "Security Lead": 3}
    assert doc.roles == ["Ops", "Security Lead", "Tech Lead"]
    assert doc.role_counts == {"Ops": 2, "Security Lead": 3}


def test_a_count_inside_the_bold_or_before_a_comment_still_counts():
    doc = parse("## Sign-Off\n\n- [ ] **Ops (2)**\n- [ ] QA(4) <!-- optional -->\n- [ ] DBA (2) <!-- ask Kim -->\n")

    assert doc.roles == ["Ops", "QA", "DBA"]
    assert doc.role_counts == {"Ops": 2, "QA": 4, "DBA": 2}


def test_a_count_of_one_is_one_approver_like_no_count():
    doc = parse("## Sign-Off\n\n- [ ] Ops (1)\n- [ ] QA\n")

    assert doc.roles == ["Ops", "QA"]
    assert doc.role_counts == {}


def test_a_role_named_twice_needs_its_highest_count():
    doc = parse(
        "## Release\n\n- [ ] ship\n\n"
        "## Sign-Off\n\n- [ ] Ops (2)\n- [ ] Ops\n- [ ] QA (2)\n\n"
        "## Sign-off\n\n- [ ] Ops (5)\n- [ ] QA\n"
    )
    first, second = doc.sections[1:]

    assert (first.roles, first.role_counts) == (["Ops", "Ops", "QA"], {"Ops": 2, "QA": 2})
    assert (second.roles, second.role_counts) == (["Ops", "QA"], {"Ops": 5})
    assert doc.roles == ["Ops", "QA"]
    assert doc.role_counts == {"Ops": 5, "QA": 2}


def test_parentheses_that_are_escaped_or_code_or_words_stay_in_the_role_name():
    doc = parse("## Sign-Off\n\n- [ ] Shift \\(2\\)\n- [ ] `Ops (2)`\n- [ ] Engineer (on call)\n- [ ] Team (2) Lead\n")

    assert doc.roles == ["Shift (2)", "Ops (2)", "Engineer (on call)", "Team (2) Lead"]
    assert doc.role_counts == {}


def test_a_count_on_an_ordinary_item_is_just_text():
    doc = parse("## Deploy\n\n- [ ] Restart the workers (2)\n- [ ] Drain (0)\n")

    assert [item.text for item in doc.sections[0].items] == ["Restart the workers (2)", "Drain (0)"]
    assert doc.role_counts == {}


def test_zero_approvers_is_an_error_with_its_line():
    with pytest.raises(ParseError) as caught:
        parse("# Launch\n\n## Sign-Off\n\n- [ ] Tech Lead\n- [ ] Ops (0)\n")

    assert caught.value.line == 6
    assert str(caught.value) == (
        "line 6: sign-off role 'Ops' asks for 0 approvers: the count in parentheses must be from 1 to 20"
    )


@pytest.mark.parametrize("count, shown", [("21", "21"), ("200", "200"), ("-1", "-1"), ("9" * 5000, "999999...")])
def test_absurd_approver_counts_are_errors_with_their_line(count, shown):
    with pytest.raises(ParseError) as caught:
        parse(f"## Sign-Off\n\n- [ ] **Security Lead** ({count})\n")

    assert caught.value.line == 3
    assert f"'Security Lead' asks for {shown} approvers" in str(caught.value)
    assert "from 1 to 20" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_twenty_approvers_is_the_most_a_role_may_need():
    doc = parse("## Sign-Off\n\n- [ ] Ops (20)\n")

    assert doc.role_counts == {"Ops": 20}


def test_a_count_without_a_role_name_is_an_error_with_its_line():
    with pytest.raises(ParseError, match=r"approver count \(2\) needs a sign-off role name") as caught:
        parse("## Sign-Off\n\n- [ ] Ops\n- [ ] **(2)**\n")

    assert caught.value.line == 4


# -- flags and checks ------------------------------------------------------------------------


def test_optional_items_and_sections():
    doc = parse(
        "## Nice to have\n"
        "<!-- optional -->\n\n"
        "- [ ] Dark mode\n\n"
        "## First day\n\n"
        "<!-- after-go-live -->\n"
        "<!-- optional -->\n\n"
        "- [ ] Watch errors\n"
        "- [ ] Tweet <!-- optional -->\n"
        "- [ ] Blog\n\n"
        "  <!-- optional -->\n"
    )
    nice, first_day = doc.sections

    assert (nice.optional, nice.after_go_live, nice.body) == (True, False, "")
    assert (first_day.optional, first_day.after_go_live, first_day.body) == (True, True, "")
    assert [(item.text, item.optional) for item in first_day.items] == [
        ("Watch errors", False),
        ("Tweet", True),
        ("Blog", True),
    ]
    assert first_day.items[2].body == ""


def test_a_flag_comment_further_down_is_just_text():
    doc = parse("## S\n\nIntro.\n\n<!-- optional -->\n\n- [ ] x\n")

    assert doc.sections[0].optional is False
    assert doc.sections[0].body == "Intro.\n\n<!-- optional -->"


def test_four_eyes_comment_under_signoff_heading_is_read():
    doc = parse("## Release\n\n- [ ] ship\n\n## ✅ Sign-Off\n<!-- four-eyes -->\n\nAsk them.\n\n- [ ] Ops (2)\n")
    release, signoff = doc.sections

    assert (signoff.four_eyes, signoff.body, signoff.roles) == (True, "Ask them.", ["Ops"])
    assert release.four_eyes is False
    assert doc.four_eyes is True


def test_four_eyes_reads_with_other_heading_flags_and_without_roles():
    doc = parse("- [ ] ship\n\n## Sign off\n\n<!-- Four-Eyes -->\n<!-- optional -->\n\nAny lead approves.\n")
    signoff = doc.sections[0]

    assert (signoff.four_eyes, signoff.optional, signoff.body) == (True, True, "Any lead approves.")
    assert doc.roles == []
    assert doc.four_eyes is True


def test_a_template_without_the_comment_is_not_four_eyes():
    doc = parse("## Sign-Off\n\n- [ ] Tech Lead\n")

    assert doc.sections[0].four_eyes is False
    assert doc.four_eyes is False


@pytest.mark.parametrize(
    "text, body",
    [
        ("## Deploy\n<!-- four-eyes -->\n\n- [ ] ship\n", "<!-- four-eyes -->"),
        ("## Sign-Off\n\nIntro.\n\n<!-- four-eyes -->\n\n- [ ] Ops\n", "Intro.\n\n<!-- four-eyes -->"),
        ("## Sign-Off\n<!-- four-eyes --> please\n\n- [ ] Ops\n", "<!-- four-eyes --> please"),
    ],
)
def test_four_eyes_comment_anywhere_else_is_just_text(text, body):
    doc = parse(text)

    assert doc.sections[0].four_eyes is False
    assert doc.sections[0].body == body
    assert doc.four_eyes is False


def test_four_eyes_in_an_item_stays_in_its_text():
    doc = parse("- [ ] Deploy <!-- four-eyes -->\n")

    assert doc.items[0].text == "Deploy <!-- four-eyes -->"
    assert doc.four_eyes is False


def test_check_annotation_in_the_text_or_the_body():
    doc = parse(
        "- [ ] Site answers <!-- check: http url=https://example.com/health -->\n"
        "- [ ] Redis answers\n\n"
        '  <!-- check: tcp host=redis.internal port="6379" probe=redis -->\n\n'
        "  Ask ops if not.\n"
        "- [ ] Certificate <!-- optional --> <!-- check: tls host=\"{{ host }}\" -->\n"
    )
    site, redis, cert = doc.items

    assert (site.text, site.check.kind, site.check.params) == (
        "Site answers",
        "http",
        {"url": "https://example.com/health"},
    )
    assert redis.check.params == {"host": "redis.internal", "port": "6379", "probe": "redis"}
    assert redis.body == "Ask ops if not."
    assert (cert.text, cert.optional, cert.check.params) == ("Certificate", True, {"host": "{{ host }}"})
    assert doc.check_count == 3


def test_annotations_in_code_are_left_alone():
    doc = parse(
        "- [ ] Explain `<!-- check: ftp x -->` syntax\n\n"
        "  ```html\n  <!-- check: nonsense -->\n  ```\n"
    )

    assert doc.items[0].check is None
    assert doc.items[0].text == "Explain `<!-- check: ftp x -->` syntax"
    assert "<!-- check: nonsense -->" in doc.items[0].body


def test_other_comments_stay_in_the_text():
    doc = parse("- [ ] Deploy <!-- TODO: automate -->\n")

    assert doc.items[0].text == "Deploy <!-- TODO: automate -->"


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   \n\n\t\n"])
def test_an_empty_file_is_refused(text):
    with pytest.raises(ParseError) as caught:
        parse(text)

    assert str(caught.value) == "the file is empty"


def test_a_file_without_tasks_is_refused():
    with pytest.raises(ParseError) as caught:
        parse("# Notes\n\n- just a list\n\n```\n- [ ] in code\n```\n")

    assert "no task items found" in str(caught.value)
    assert caught.value.line is None


@pytest.mark.parametrize(
    "annotation, message",
    [
        ("<!-- check -->", "malformed check annotation"),
        ("<!-- check: -->", "has no kind"),
        ('<!-- check: http url="https://example.com -->', "unterminated quote"),
        ("<!-- check: http url -->", "'url' has no value"),
        ("<!-- check: http url=https://a.example url=https://b.example -->", "duplicate key 'url'"),
        ("<!-- checks: http -->", "malformed check annotation"),
        ("<!-- check: ftp host=files.example.com -->", "unknown check kind 'ftp'"),
        ("<!-- check: tcp host=db.example.com port=99999 -->", "port"),
        ("<!-- check: http url=file:///etc/passwd -->", "url"),
    ],
)
def test_bad_annotations_name_their_line(annotation, message):
    text = f"# Launch\n\n- [ ] fine\n- [ ] broken {annotation}\n"

    with pytest.raises(ParseError) as caught:
        parse(text)

    assert caught.value.line == 4
    assert str(caught.value).startswith("line 4: ")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_bad_annotation_in_a_body_names_its_own_line():
    text = "- [ ] one\n\n  Some words\n  and <!-- check: tcp host=db port=0 --> here\n"

    with pytest.raises(ParseError) as caught:
        parse(text)

    assert caught.value.line == 4


def test_two_checks_on_one_item_are_refused():
    text = "- [ ] one <!-- check: http url=https://example.com -->\n\n  <!-- check: tls host=example.com -->\n"

    with pytest.raises(ParseError, match="more than one check annotation") as caught:
        parse(text)

    assert caught.value.line == 3


def test_a_check_outside_any_item_is_refused():
    with pytest.raises(ParseError, match="must belong to a task item") as caught:
        parse("# N\n\n<!-- check: http url=https://example.com -->\n\n- [ ] x\n")

    assert caught.value.line == 3


def test_bytes_go_through_the_decoder():
    doc = parse("- [ ] caf\xe9 ready\r\n".encode("cp1252"))

    assert doc.items[0].text == "café ready"


# -- helpers on the tree ---------------------------------------------------------------------


def test_counts_and_walks():
    doc = parse(
        "# N\n\n- [ ] root <!-- check: http url=https://example.com -->\n\n"
        "## A\n\n- [ ] a1\n  - [ ] a1.1\n\n### B\n\n- [ ] b1\n\n"
        "## Sign-off\n\n- [ ] Tech Lead\n"
    )

    assert [(item.text, depth) for item, depth in doc.iter_items()] == [
        ("root", 0),
        ("a1", 0),
        ("a1.1", 1),
        ("b1", 0),
    ]
    assert [s.title for s in doc.iter_sections()] == ["A", "B", "Sign-off"]
    assert (doc.item_count, doc.section_count, doc.check_count) == (4, 3, 1)
    assert doc.roles == ["Tech Lead"]
