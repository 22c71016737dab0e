"""Two people change one item at the same moment."""

import threading

import pytest
from django.db import connection

from checklists import services
from checklists.models import AuditEvent, Run, RunItem

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_simultaneous_changes_both_land_in_order_and_everyone_sees_the_last(small_template, make_user):
    ana, ben = make_user("ana", "member"), make_user("ben", "member")
    environment = services.environment_get_or_create("shop", "prod")
    run, _ = services.run_start(version=small_template, environment=environment, version_label="1", actor=ana)
    item = run.items.order_by("position").first()
    start_revision = Run.objects.get(pk=run.pk).revision
    barrier = threading.Barrier(2)
    errors = []

    def change(user, state, reason=""):
        try:
            barrier.wait(timeout=5)
            services.run_item_set_state(item=RunItem.objects.get(pk=item.pk), state=state, actor=user, reason=reason)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=change, args=(ana, "done")),
        threading.Thread(target=change, args=(ben, "blocked", "smoke test failed")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    assert errors == []
    events = list(AuditEvent.objects.filter(item_id=item.pk, action="item.state").order_by("revision"))
    assert {e.actor_name for e in events} == {"ana", "ben"}
    # The second change saw the first: its "before" is the first one's "after".
    assert events[1].before["state"] == events[0].after["state"]
    final = RunItem.objects.get(pk=item.pk)
    assert final.state == events[1].after["state"]
    assert Run.objects.get(pk=run.pk).revision == start_revision + 2
    assert final.revision == start_revision + 2
