"""The README's gate tables, row by row, through the real services.

The rows are read from README.md ("The go-live gate"): the table a lead reads is the one the
code is held to.
"""

from pathlib import Path

import pytest

from checklists import markdown as md
from checklists import selectors, services
from checklists.models import Signoff

from .stories import verdict

README = Path(__file__).resolve().parents[1] / "README.md"

CHECKLIST = """\
# Gate Table

## Launch

- [ ] Required step <!-- check: tcp host=127.0.0.1 port=1 -->
- [ ] Other step
- [ ] Optional step <!-- optional --> <!-- check: tcp host=127.0.0.1 port=1 -->

## Watch
<!-- after-go-live -->

- [ ] Watch step <!-- check: tcp host=127.0.0.1 port=1 -->

## Sign-Off

- [ ] Tech Lead
- [ ] Security Lead
"""

ITEM = {"required": "Required step", "optional": "Optional step", "after-go-live": "Watch step"}


def readme_table(lead_in: str) -> list[list[str]]:
    """The body rows of the first table after the paragraph that starts with `lead_in`."""
    section = README.read_text().split("## The go-live gate", 1)[1].split("\n## ", 1)[0]
    lines = section.split(lead_in, 1)[1].splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("|"))
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return table[2:]  # past the header and its rule


GATE_ROWS = readme_table("What holds the gate")
STALE_ROWS = readme_table("What makes earlier approvals stale")


def test_the_readme_tables_are_there():
    assert len(GATE_ROWS) >= 10 and len(STALE_ROWS) >= 10


@pytest.fixture
def run(db, lead):
    version = services.template_import(md.parse(CHECKLIST), actor=lead)
    environment = services.environment_get_or_create("gate", "prod")
    run, _ = services.run_start(version=version, environment=environment, version_label="1", actor=lead)
    return run


def set_state(item, state, actor):
    if state != item.state:
        reason = "not needed here" if state in ("blocked", "skipped") else ""
        services.run_item_set_state(item=item, state=state, actor=actor, reason=reason)
    item.refresh_from_db()


@pytest.mark.django_db
@pytest.mark.parametrize("kind,state,latest,holds", GATE_ROWS, ids=["/".join(r[:3]) for r in GATE_ROWS])
def test_what_holds_the_gate(run, lead, kind, state, latest, holds):
    item = run.items.get(text=ITEM[kind])
    set_state(item, state, lead)
    if latest != "none":
        verdict(item, latest)
    item.refresh_from_db()
    assert item.state == state

    open_ids = [o["id"] for o in selectors.run_gate_open_items(run)]

    assert item.holds_gate is (holds == "yes")
    assert (item.pk in open_ids) is (holds == "yes")
    run.refresh_from_db()
    assert run.gate_open == len(open_ids)


@pytest.mark.django_db
@pytest.mark.parametrize("kind,before,change,stales", STALE_ROWS, ids=["/".join(r[:3]) for r in STALE_ROWS])
def test_what_stales_approvals(run, lead, make_user, kind, before, change, stales):
    item = run.items.get(text=ITEM[kind])
    state, latest = (part.strip() for part in before.split(","))
    set_state(item, state, lead)
    if latest != "none":
        verdict(item, latest)
    gil = make_user("gil", "lead", "Tech Lead")
    services.signoff_record(run=run, actor=gil, decision="approve", role="Tech Lead", override_reason="table row")
    assert not Signoff.objects.get(run=run).stale

    what, _, value = change.partition(" ")
    item.refresh_from_db()
    if what == "state":
        set_state(item, value, lead)
    elif what == "verdict":
        verdict(item, value)
    else:
        services.note_add(run=run, body="a note changes nothing", actor=lead, item=item)

    assert Signoff.objects.get(run=run).stale is (stales == "yes")
