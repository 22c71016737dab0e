"""Sign-off policies a checklist can ask for: two people for a role, and four eyes."""

import pytest

from checklists import markdown as md
from checklists import services

pytestmark = pytest.mark.django_db

QUORUM = """\
# Database Migration

## Steps

- [ ] Migration applied

## Sign-Off

- [ ] Ops (2)
- [ ] Tech Lead
"""

FOUR_EYES = """\
# Hotfix

## Steps

- [ ] Patch deployed

## Sign-Off
<!-- four-eyes -->

- [ ] Tech Lead
"""


def open_run(text, starter, lead):
    version = services.template_import(md.parse(text), actor=lead)
    environment = services.environment_get_or_create("core", "production")
    run, _ = services.run_start(version=version, environment=environment, version_label="7", actor=starter)
    for item in run.items.all():
        services.run_item_set_state(item=item, state="done", actor=starter)
    return run


def sign(api_as, user, run, role, **extra):
    return api_as(user).post(f"/api/v1/runs/{run.pk}/signoffs", {"role": role, "decision": "approve", **extra})


def status(api_as, user, run):
    return api_as(user).get(f"/api/v1/runs/{run.pk}").json_body


def test_ops_needs_two_different_people_before_the_run_goes_live(api_as, make_user, lead, member):
    ola, otto, tess = make_user("ola", "Ops"), make_user("otto", "Ops"), make_user("tess", "Tech Lead")
    run = open_run(QUORUM, member, lead)

    assert sign(api_as, tess, run, "Tech Lead").status_code == 201
    assert sign(api_as, ola, run, "Ops").status_code == 201
    again = sign(api_as, ola, run, "Ops")
    halfway = status(api_as, member, run)
    assert sign(api_as, otto, run, "Ops").status_code == 201

    assert again.status_code == 409 and "another person" in again.json_body["error"]
    assert halfway["status"] == "in_progress"
    assert halfway["role_counts"] == {"Ops": 2}
    assert halfway["four_eyes"] is False
    assert status(api_as, member, run)["status"] == "completed"


def test_the_signoff_panel_shows_how_many_of_a_role_have_approved(client, make_user, lead, member):
    ola = make_user("ola", "Ops")
    run = open_run(QUORUM, member, lead)
    client.force_login(ola)

    posted = client.post(f"/runs/{run.pk}/signoffs", {"role": "Ops", "decision": "approve"})
    page = client.get(run.get_absolute_url()).content.decode()

    assert posted.status_code == 302
    assert 'data-role="Ops"><strong>Ops</strong> 1 of 2' in page
    assert 'data-role="Tech Lead"><strong>Tech Lead</strong> 0 of 1' in page


def test_with_four_eyes_the_person_who_started_the_run_cannot_approve_it_alone(api_as, make_user, lead):
    starter = make_user("stella", "member", "Tech Lead")
    tess = make_user("tess", "Tech Lead")
    run = open_run(FOUR_EYES, starter, lead)

    assert sign(api_as, starter, run, "Tech Lead").status_code == 201
    alone = status(api_as, starter, run)
    assert sign(api_as, tess, run, "Tech Lead").status_code == 201

    assert alone["status"] == "in_progress" and alone["four_eyes"] is True
    assert status(api_as, starter, run)["status"] == "completed"


def test_an_override_by_the_starter_counts_as_theirs(api_as, make_user, lead):
    starter = make_user("stella", "lead", "Tech Lead")
    run = open_run(FOUR_EYES, starter, lead)
    services.run_item_set_state(item=run.items.get(), state="todo", actor=starter)

    answer = sign(api_as, starter, run, "Tech Lead", override_reason="hotfix, on call alone")

    assert answer.status_code == 201
    assert status(api_as, starter, run)["status"] == "in_progress"


def test_the_page_says_someone_else_must_approve(client, make_user, lead):
    starter = make_user("stella", "member", "Tech Lead")
    run = open_run(FOUR_EYES, starter, lead)
    client.force_login(starter)

    client.post(f"/runs/{run.pk}/signoffs", {"role": "Tech Lead", "decision": "approve"})
    page = client.get(run.get_absolute_url()).content.decode()

    assert 'class="four-eyes bad"' in page
    assert "someone other than stella must approve" in page


def test_a_past_run_imported_from_a_filled_in_checklist_is_exempt_from_four_eyes(make_user, lead):
    starter = make_user("stella", "member", "Tech Lead")
    environment = services.environment_get_or_create("core", "production")
    run = services.run_import(md.parse(FOUR_EYES.replace("- [ ] Patch", "- [x] Patch")), environment=environment, version_label="6", actor=starter)

    services.signoff_record(run=run, actor=starter, decision="approve", role="Tech Lead")

    run.refresh_from_db()
    assert run.status == "completed"
