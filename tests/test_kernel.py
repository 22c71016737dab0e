"""One way to change a run: the stories that made the kernel, told as users met them."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from checklists import markdown as md
from checklists import services
from checklists.errors import KernelBypass
from checklists.models import AuditEvent, Note, Run, RunItem, RunSection, Signoff

from .stories import verdict

pytestmark = pytest.mark.django_db


@pytest.fixture
def tess(make_user):
    return make_user("tess", "Tech Lead")


def finish_required(run, actor):
    for item in run.items.filter(required=True).order_by("position"):
        services.run_item_set_state(item=item, state="done", actor=actor)


def checked_item(run):
    return run.items.filter(required=True).exclude(check_kind="").order_by("position").first()


def approve(api_as, user, run, role="Tech Lead"):
    return api_as(user).post(f"/api/v1/runs/{run.pk}/signoffs", {"role": role, "decision": "approve"})


# --- The stories at the top of the issue ----------------------------------------------------


def test_an_item_skipped_with_a_reason_whose_check_failed_no_longer_holds_the_gate(api_as, run, member, tess):
    finish_required(run, member)
    item = checked_item(run)
    verdict(item, "failed", "connection refused")
    services.run_item_set_state(item=item, state="skipped", actor=member, reason="the database moved; checked by hand")

    answer = approve(api_as, tess, run)

    assert answer.status_code == 201, answer.json_body


def test_a_verdict_turning_to_error_after_an_approval_makes_it_stale(api_as, run, member, tess):
    finish_required(run, member)
    item = checked_item(run)
    verdict(item, "passed")
    assert approve(api_as, tess, run).status_code == 201

    verdict(item, "error", "timed out")

    signoffs = api_as(tess).get(f"/api/v1/runs/{run.pk}").json_body["signoffs"]
    assert [s["stale"] for s in signoffs] == [True]
    assert AuditEvent.objects.filter(run=run, action="signoff.stale", item=item).exists()


def test_moving_between_failed_and_error_keeps_an_override_approval(api_as, run, member, lead, make_user):
    finish_required(run, member)
    item = checked_item(run)
    verdict(item, "failed")
    gil = make_user("gil", "lead", "Tech Lead")
    answer = api_as(gil).post(
        f"/api/v1/runs/{run.pk}/signoffs", {"role": "Tech Lead", "decision": "approve", "override_reason": "known flake"}
    )
    assert answer.status_code == 201

    verdict(item, "error")

    assert not Signoff.objects.get(run=run).stale


def test_others_see_a_check_queued_and_then_running_live(api_as, run, member):
    item = checked_item(run)
    before = Run.objects.get(pk=run.pk).revision

    result = verdict(item, "queued")
    queued = api_as(member).get(f"/api/v1/runs/{run.pk}").json_body
    services.verification_claim([result.pk])
    running = api_as(member).get(f"/api/v1/runs/{run.pk}").json_body

    assert before < queued["revision"] < running["revision"]
    by_id = {i["id"]: i for i in queued["items"]}
    assert by_id[item.pk]["verification"]["status"] == "queued"
    assert {i["id"]: i for i in running["items"]}[item.pk]["verification"]["status"] == "running"
    # The page's poll from the old revision brings the item back with its new badge.
    assert RunItem.objects.get(pk=item.pk).revision == running["revision"]


def test_a_queued_check_on_a_done_item_holds_the_gate_until_its_verdict(api_as, run, member, tess):
    finish_required(run, member)
    item = checked_item(run)
    verdict(item, "queued")

    refused = approve(api_as, tess, run)

    assert refused.status_code == 409
    assert refused.json_body["open"] == [
        {"id": item.pk, "title": item.text, "state": "done", "verification": "queued", "problem": "verification in progress"}
    ]


def test_the_admin_only_shows_runs_items_and_signoffs(client, run, make_user):
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.create_superuser("root", "root@example.com", "x")
    client.force_login(admin)
    item = run.items.first()

    change = client.post(f"/admin/checklists/run/{run.pk}/change/", {"status": "completed", "required_roles": "[]"})
    item_change = client.post(f"/admin/checklists/runitem/{item.pk}/change/", {"state": "done"})
    page = client.get(f"/admin/checklists/run/{run.pk}/change/")

    assert change.status_code == item_change.status_code == 403
    assert page.status_code == 200 and b'name="status"' not in page.content
    run.refresh_from_db()
    assert run.status == "in_progress"
    assert client.get("/admin/checklists/signoff/add/").status_code == 403


# --- The guard: no second path --------------------------------------------------------------


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(lambda run: Run.objects.filter(pk=run.pk).update(status="completed"), id="run update"),
        pytest.param(lambda run: run.save(), id="run save"),
        pytest.param(lambda run: RunItem.objects.filter(run=run).update(state="done"), id="item update"),
        pytest.param(lambda run: run.items.first().save(), id="item save"),
        pytest.param(lambda run: RunSection.objects.filter(run=run).update(items_closed=0), id="section update"),
        pytest.param(lambda run: Signoff.objects.create(run=run, role="Tech Lead", decision="approve", user=run.started_by), id="signoff create"),
        pytest.param(lambda run: Signoff.objects.bulk_create([Signoff(run=run, role="x", decision="approve", user=run.started_by)]), id="signoff bulk"),
        pytest.param(lambda run: AuditEvent.objects.create(run=run, actor_name="x", action="run.live"), id="audit create"),
        pytest.param(lambda run: Note.objects.create(run=run, author=run.started_by, body="x"), id="note create"),
        pytest.param(lambda run: RunItem.objects.filter(run=run).delete(), id="item delete"),
    ],
)
def test_no_run_item_signoff_or_audit_row_is_written_outside_the_kernel(run, write):
    revision = Run.objects.get(pk=run.pk).revision

    with pytest.raises(KernelBypass):
        write(run)

    assert Run.objects.get(pk=run.pk).revision == revision
    assert not Signoff.objects.exists()


def test_no_module_but_the_kernel_opens_the_guard():
    """The guard's switch is private to the kernel: no service, view or task may flip it."""
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1] / "checklists"
    openers = [p.relative_to(root).as_posix() for p in root.rglob("*.py") if "_kernel_open" in p.read_text() or "_open.set" in p.read_text()]

    assert openers == ["services/kernel.py"]


# --- A change costs the same on any run size ------------------------------------------------


def long_checklist(items: int) -> str:
    lines = ["# Long Launch", ""]
    for section in range(items // 10):
        lines += [f"## Section {section}", ""]
        lines += [f"- [ ] Step {section}.{n} <!-- check: tcp host=127.0.0.1 port=1 -->" if n == 0 else f"- [ ] Step {section}.{n}" for n in range(10)]
        lines.append("")
    lines += ["## Sign-Off", "", "- [ ] Tech Lead", ""]
    return "\n".join(lines)


def started(lead, items: int) -> Run:
    version = services.template_import(md.parse(long_checklist(items)), actor=lead)
    environment = services.environment_get_or_create("big", f"prod-{items}")
    run, _ = services.run_start(version=version, environment=environment, version_label="1", actor=lead)
    return run


def rows_read() -> dict[str, int]:
    """Rows Postgres read for this transaction so far, by table (its own counters)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname, seq_tup_read + coalesce(idx_tup_fetch, 0) FROM pg_stat_xact_user_tables")
        return dict(cursor.fetchall())


def tick_and_poll(client, run) -> tuple[int, int, int]:
    """Queries for an htmx tick, for the poll after it, and for the API tick."""
    item = run.items.order_by("position")[5]
    revision = Run.objects.get(pk=run.pk).revision
    with CaptureQueriesContext(connection) as tick:
        answer = client.post(f"/runs/{run.pk}/items/{item.pk}/state", {"state": "done"}, headers={"HX-Request": "true"})
    assert answer.status_code == 200
    with CaptureQueriesContext(connection) as poll:
        answer = client.get(f"/runs/{run.pk}/poll?rev={revision}&status=in_progress", headers={"HX-Request": "true"})
    assert answer.status_code == 200 and f'data-item-id="{item.pk}"'.encode() in answer.content
    return len(tick), len(poll), item.pk


def test_a_tick_and_the_poll_after_it_cost_the_same_on_30_and_300_items(client, lead, api_as):
    small, large = started(lead, 30), started(lead, 300)
    client.force_login(lead)

    assert tick_and_poll(client, small)[:2] == tick_and_poll(client, large)[:2]

    pipeline = api_as(lead)
    pipeline.get("/api/v1/templates")  # the token's first use of the minute writes its last_used_at
    counts = []
    for run in (small, large):
        item = run.items.order_by("position")[7]
        with CaptureQueriesContext(connection) as queries:
            assert pipeline.post(f"/api/v1/runs/{run.pk}/items/{item.pk}", {"state": "done"}).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_a_tick_reads_the_rows_it_changes_not_the_whole_run(lead, api_as):
    pipeline = api_as(lead)
    pipeline.get("/api/v1/templates")
    read = []
    for run in (started(lead, 30), started(lead, 300)):
        item = run.items.order_by("position")[7]
        with connection.cursor() as cursor:
            # As autovacuum would have done by launch day: without statistics the planner
            # reads a run's items through the run's index whatever the query asks for.
            cursor.execute("ANALYZE")
        before = rows_read()
        assert pipeline.post(f"/api/v1/runs/{run.pk}/items/{item.pk}", {"state": "done"}).status_code == 200
        after = rows_read()
        read.append({table: after[table] - before.get(table, 0) for table in after})

    small, large = read
    # Items read: the one ticked, looked up by the view, the kernel and the answer.
    assert small["checklists_runitem"] == large["checklists_runitem"] <= 5, (small, large)
    # Everything else is the same lookups on tables that do not grow with the run.
    assert sum(large.values()) <= sum(small.values()) + 10, (small, large)


def test_the_kernel_keeps_the_counts_the_progress_bar_and_gate_read(lead, member):
    run = started(lead, 30)
    items = list(run.items.order_by("position"))
    services.run_item_set_state(item=items[0], state="done", actor=member)
    services.run_item_set_state(item=items[1], state="blocked", actor=member, reason="waiting on DNS")
    services.run_item_set_state(item=items[2], state="skipped", actor=member, reason="not on this cloud")
    services.section_skip(section=run.sections.get(title="Section 2"), reason="no queue here", actor=member)
    verdict(items[0], "failed")

    run.refresh_from_db()
    fresh = list(run.items.all())
    assert run.progress == {
        "done": sum(i.state == "done" for i in fresh),
        "skipped": sum(i.state == "skipped" for i in fresh),
        "blocked": sum(i.state == "blocked" for i in fresh),
        "in_progress": 0,
        "total": 30,
    }
    # Held: 19 = 30, less the skipped item and the skipped section's 10; the done item with a
    # failed check still holds, the blocked one too.
    assert run.gate_open == sum(i.holds_gate for i in fresh) == 19
    first = run.sections.get(title="Section 0")
    assert (first.items_closed, first.items_total) == (2, 10)


def test_the_poll_sends_what_happened_since_and_the_panels_only_when_they_moved(client, lead, member):
    run = started(lead, 30)
    client.force_login(member)
    first, second = run.items.order_by("position")[:2]
    seen = Run.objects.get(pk=run.pk).revision

    services.run_item_set_state(item=first, state="in_progress", actor=member)
    quiet = client.get(f"/runs/{run.pk}/poll?rev={seen}&status=in_progress&gate=30", headers={"HX-Request": "true"}).content.decode()
    services.note_add(run=run, body="DNS TTL lowered to 60 s", actor=member)
    noted = client.get(f"/runs/{run.pk}/poll?rev={seen}&status=in_progress&gate=30", headers={"HX-Request": "true"}).content.decode()

    assert f'data-item-id="{first.pk}"' in quiet and f'data-item-id="{second.pk}"' not in quiet
    assert 'hx-swap-oob="afterbegin:#activity-list"' in quiet and "mo</strong> changed" in quiet
    assert 'id="signoff"' not in quiet and 'id="notes"' not in quiet
    assert 'id="notes"' in noted and "DNS TTL lowered" in noted
    # A page that shows another count of open items gets the new count; one that showed none
    # open gets the whole panel again (its form offers the gate override only while items are open).
    counted = client.get(f"/runs/{run.pk}/poll?rev={seen}&status=in_progress&gate=29", headers={"HX-Request": "true"}).content.decode()
    assert 'id="signoff-gate"' in counted and "<strong>30</strong> required items still open" in counted
    assert 'id="signoff"' not in counted
    flipped = client.get(f"/runs/{run.pk}/poll?rev={seen}&status=in_progress&gate=0", headers={"HX-Request": "true"}).content.decode()
    assert 'id="signoff"' in flipped


def test_a_busy_poll_sends_the_sign_off_panel_only_when_a_sign_off_moved(client, lead, member, make_user):
    run = started(lead, 30)
    client.force_login(member)
    items = list(run.items.order_by("position"))
    seen = Run.objects.get(pk=run.pk).revision
    # More changes than the feed shows since the page last looked: none of them a sign-off.
    for item in items:
        services.run_item_set_state(item=item, state="in_progress", actor=member)

    def poll():
        return client.get(f"/runs/{run.pk}/poll?rev={seen}&status=in_progress&gate=30", headers={"HX-Request": "true"}).content.decode()

    busy = poll()
    assert 'id="activity"' in busy  # the feed goes whole
    assert 'id="signoff"' not in busy and 'id="notes"' not in busy
    services.note_add(run=run, body="Freeze announced in #launch", actor=member)
    assert 'id="notes"' in poll()


def test_a_skip_without_a_reason_in_an_imported_checklist_holds_the_gate(make_user, lead, api_as):
    tess = make_user("tess", "Tech Lead")
    text = "# Past Launch\n\n## Steps\n\n- [x] Deployed\n- [-] Smoke tested\n\n## Sign-Off\n\n- [ ] Tech Lead\n"
    environment = services.environment_get_or_create("past", "prod")
    run = services.run_import(md.parse(text), environment=environment, version_label="0.9", actor=lead)

    answer = approve(api_as, tess, run)

    assert answer.status_code == 409
    assert answer.json_body["open"][0]["problem"] == "skipped without a reason"


def test_someone_who_approved_then_rejected_can_approve_again(api_as, run, member, make_user):
    make_user("sam", "Security Lead")  # the run needs both roles: one approval does not end it
    finish_required(run, member)
    tess = make_user("tess", "Tech Lead")
    assert approve(api_as, tess, run).status_code == 201
    assert api_as(tess).post(f"/api/v1/runs/{run.pk}/signoffs", {"role": "Tech Lead", "decision": "reject", "comment": "smoke test flaky"}).status_code == 201

    answer = approve(api_as, tess, run)

    assert answer.status_code == 201, answer.json_body


def test_a_check_claimed_after_its_deadline_passed_is_the_workers_not_the_sweeps(run):
    from datetime import timedelta

    from django.utils import timezone

    from checklists.models import VerificationResult

    item = checked_item(run)
    result = verdict(item, "queued")
    # It waited in a backed-up queue past its deadline; a worker takes it just then.
    VerificationResult.objects.filter(pk=result.pk).update(deadline_at=timezone.now() - timedelta(seconds=1))
    services.verification_claim([result.pk])

    assert services.verification_sweep() == 0
    assert VerificationResult.objects.get(pk=result.pk).status == "running"
    services.verification_record(result_id=result.pk, status="passed", message="200 OK")
    assert RunItem.objects.get(pk=item.pk).verdict == "passed"
