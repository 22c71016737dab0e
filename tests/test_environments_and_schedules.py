"""Leads keep environment variables and schedule re-verification of the first 24 hours."""

import json

import pytest
from django_celery_beat.models import PeriodicTask

from checklists import markdown as md
from checklists import services
from checklists.models import EnvironmentVariable, Run, VerificationResult

pytestmark = pytest.mark.django_db


def test_a_secret_variable_is_stored_encrypted_and_never_shown_again(lead_browser):
    environment = services.environment_get_or_create("shop", "production")
    url = f"/environments/{environment.pk}/variables"

    lead_browser.post(url, {"name": "api_token", "value": "tok-123-very-secret", "secret": "1"})
    lead_browser.post(url, {"name": "base_url", "value": "https://shop.example.test"})
    page = lead_browser.get(f"/environments/{environment.pk}/").content.decode()

    token = EnvironmentVariable.objects.get(name="api_token")
    assert "tok-123-very-secret" not in token.stored and token.value == "tok-123-very-secret"
    assert "tok-123-very-secret" not in page
    assert "https://shop.example.test" in page


def test_saving_a_secret_blank_keeps_its_value(lead_browser):
    environment = services.environment_get_or_create("shop", "production")
    url = f"/environments/{environment.pk}/variables"
    lead_browser.post(url, {"name": "api_token", "value": "first", "secret": "1"})

    lead_browser.post(url, {"name": "api_token", "value": "", "secret": "1"})

    assert EnvironmentVariable.objects.get(name="api_token").value == "first"


def test_a_bad_variable_name_is_refused_with_a_message(lead_browser):
    environment = services.environment_get_or_create("shop", "production")

    page = lead_browser.post(f"/environments/{environment.pk}/variables", {"name": "base url!", "value": "x"}, follow=True)

    assert "is not a variable name" in page.content.decode()
    assert EnvironmentVariable.objects.count() == 0


def test_a_run_starts_with_the_environments_variables(lead):
    environment = services.environment_get_or_create("shop", "production")
    services.environment_variable_set(environment=environment, name="base_url", value="https://a.test", secret=False, per_run=True)
    services.environment_variable_set(environment=environment, name="token", value="t0k", secret=True)
    version = services.template_import(md.parse("# T\n\n- [ ] a <!-- check: http url=\"{{ base_url }}/h\" -->\n"), actor=lead)

    run, _ = services.run_start(version=version, environment=environment, version_label="1", actor=lead, variables={"base_url": "https://b.test"})

    assert run.variables_dict() == {"base_url": "https://b.test", "token": "t0k"}
    assert run.variables.get(name="token").secret


def test_members_cannot_change_variables(client, member):
    environment = services.environment_get_or_create("shop", "production")
    client.force_login(member)

    assert client.post(f"/environments/{environment.pk}/variables", {"name": "x", "value": "y"}).status_code == 403


def test_scheduling_a_run_creates_a_beat_entry_and_stopping_removes_it(client, member, small_template):
    environment = services.environment_get_or_create("shop", "production")
    run, _ = services.run_start(version=small_template, environment=environment, version_label="1", actor=member)
    client.force_login(member)

    client.post(f"/runs/{run.pk}/schedule", {"every_minutes": "60"})
    task = PeriodicTask.objects.get()
    assert task.task == "checklists.tasks.verification_scheduled"
    assert json.loads(task.kwargs) == {"run_id": run.pk}
    assert task.interval.every == 60
    assert "Every 60 minutes" in client.get(run.get_absolute_url()).content.decode()

    client.post(f"/runs/{run.pk}/schedule", {"every_minutes": "0"})
    assert PeriodicTask.objects.count() == 0


def test_too_frequent_a_schedule_is_refused(client, member, small_template):
    environment = services.environment_get_or_create("shop", "production")
    run, _ = services.run_start(version=small_template, environment=environment, version_label="1", actor=member)
    client.force_login(member)

    page = client.post(f"/runs/{run.pk}/schedule", {"every_minutes": "1"}, follow=True)

    assert "5 minutes" in page.content.decode()
    assert PeriodicTask.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_when_an_environment_schedule_fires_it_verifies_the_latest_live_run(lead, broker_at, throwaway_redis):
    broker_at(throwaway_redis.url)
    environment = services.environment_get_or_create("shop", "production")
    version = services.template_import(md.parse("# T\n\n- [ ] a\n\n## Day 1\n<!-- after-go-live -->\n\n- [ ] backups <!-- check: tcp host=127.0.0.1 port=6379 -->\n"), actor=lead)
    run, _ = services.run_start(version=version, environment=environment, version_label="1", actor=lead)
    services.run_item_set_state(item=run.items.get(text="a"), state="done", actor=lead)
    services.signoff_record(run=run, actor=lead, decision="approve")
    assert Run.objects.get(pk=run.pk).status == "completed"
    services.schedule_set(environment=environment, every_minutes=1440)
    task = PeriodicTask.objects.get()

    from checklists.tasks import verification_scheduled

    queued = verification_scheduled(**json.loads(task.kwargs))

    assert queued == 1
    assert VerificationResult.objects.get().item.text == "backups"
