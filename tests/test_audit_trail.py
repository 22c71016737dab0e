"""The audit trail is append-only: nobody edits history, not even with SQL."""

import pytest
from django.db import DatabaseError, connection, transaction

from checklists import services
from checklists.models import AuditEvent, RuleError

pytestmark = pytest.mark.django_db


@pytest.fixture
def run_with_events(small_template, member):
    environment = services.environment_get_or_create("shop", "production")
    run, _ = services.run_start(version=small_template, environment=environment, version_label="1.0", actor=member)
    services.run_item_set_state(item=run.items.first(), state="done", actor=member)
    return run


def test_the_database_refuses_to_update_an_audit_event(run_with_events):
    event = AuditEvent.objects.filter(run=run_with_events).first()

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("UPDATE checklists_auditevent SET actor_name = 'mallory' WHERE id = %s", [event.pk])

    assert AuditEvent.objects.get(pk=event.pk).actor_name == event.actor_name


def test_the_database_refuses_to_delete_audit_events(run_with_events):
    count = AuditEvent.objects.count()

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.all()._raw_delete(AuditEvent.objects.db)

    assert AuditEvent.objects.count() == count


def test_the_orm_refuses_to_change_or_delete_an_event(run_with_events):
    event = AuditEvent.objects.first()
    event.actor_name = "mallory"

    with pytest.raises(RuleError):
        event.save()
    with pytest.raises(RuleError):
        event.delete()


def test_a_run_with_history_cannot_be_deleted(run_with_events):
    from django.db.models import ProtectedError

    with pytest.raises(ProtectedError):
        run_with_events.delete()


def test_deleting_a_template_keeps_its_runs(run_with_events, small_template):
    small_template.template.delete()

    run_with_events.refresh_from_db()
    assert run_with_events.template is None
    assert run_with_events.template_name == "Small Launch"
    assert run_with_events.items.count() == 6


def test_starting_and_ticking_write_events_naming_the_actor(run_with_events):
    actions = list(AuditEvent.objects.filter(run=run_with_events).values_list("action", "actor_name"))

    assert actions == [("run.start", "mo"), ("item.state", "mo")]


def test_admin_shows_events_read_only(client, make_user, run_with_events):
    admin_user = make_user("root", "admin")
    client.force_login(admin_user)
    event = AuditEvent.objects.first()

    listing = client.get("/admin/checklists/auditevent/")
    change = client.post(f"/admin/checklists/auditevent/{event.pk}/change/", {"actor_name": "mallory"})
    delete = client.post(f"/admin/checklists/auditevent/{event.pk}/delete/", {"post": "yes"})

    assert listing.status_code == 200
    assert change.status_code == 403
    assert delete.status_code == 403
    assert AuditEvent.objects.get(pk=event.pk).actor_name == "mo"


def test_people_are_deactivated_not_deleted_in_the_admin(client, make_user, run_with_events):
    client.force_login(make_user("root", "admin"))
    mo = run_with_events.started_by

    answer = client.post(f"/admin/auth/user/{mo.pk}/delete/", {"post": "yes"})

    assert answer.status_code == 403
    assert AuditEvent.objects.filter(actor=mo).exists()
