"""Small things a reviewer found on the run and environment pages."""

import os

import pytest
from django.core.management import call_command

from checklists import services
from checklists.models import ChecklistTemplate, VerificationResult

from .stories import go_live

pytestmark = pytest.mark.django_db


def test_the_signoff_form_offers_only_the_roles_she_holds(client, make_user, run):
    sam = make_user("sam", "member", "Security Lead")
    client.force_login(sam)

    page = client.get(run.get_absolute_url()).content.decode()

    form = page.split('class="signoff-form"')[1].split("</form>")[0]
    assert "<option>Security Lead</option>" in form
    assert "Tech Lead" not in form


def test_someone_holding_no_role_of_the_run_sees_no_signoff_form(client, lead, run):
    client.force_login(lead)

    page = client.get(run.get_absolute_url()).content.decode()

    assert 'class="signoff-form"' not in page


def test_record_rollback_is_offered_only_on_a_live_run(client, lead, run):
    client.force_login(lead)
    open_page = client.get(run.get_absolute_url()).content.decode()
    go_live(run)
    live_page = client.get(run.get_absolute_url()).content.decode()

    assert 'value="aborted"' in open_page and 'value="rolled_back"' not in open_page
    assert 'value="rolled_back"' in live_page and 'value="aborted"' not in live_page


def test_an_environment_schedule_reverifies_every_check_of_the_starter_templates_latest_live_run(client, lead):
    call_command("load_starter_templates", stdout=open(os.devnull, "w"))
    version = ChecklistTemplate.objects.get(slug="web-service-launch").latest_version()
    environment = services.environment_get_or_create("shop", "production")
    run, _ = services.run_start(version=version, environment=environment, version_label="3.0", actor=lead)
    go_live(run)
    before = {i.pk: i.state for i in run.items.all()}

    queued = services.verification_scheduled(environment_id=environment.pk)

    assert queued == version.check_count > 0
    assert VerificationResult.objects.filter(run=run).count() == version.check_count
    # Evidence joins the run's record; what was signed off stays as it was.
    assert {i.pk: i.state for i in run.items.all()} == before
    client.force_login(lead)
    page = client.get(f"/environments/{environment.pk}/").content.decode()
    assert "Re-runs every check of this environment's latest live run" in page
    assert f"{version.check_count} checks" in page
