"""A manager reviews launches: the history filtered, searched and sorted, its exports, the
reports' charts and where they lead, two runs side by side, and pages that cost the same
number of queries at 100 and 1,000 runs."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Count, Q
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from checklists import history as history_queries
from checklists import markdown as md
from checklists import services
from checklists.errors import KernelBypass
from checklists.models import Run, RunItem, RunSection

from .conftest import SMALL_CHECKLIST
from .stories import go_live, verdict

pytestmark = pytest.mark.django_db


def item(run, text: str) -> RunItem:
    return run.items.get(text=text)


@pytest.fixture
def manager_browser(client, make_user):
    client.force_login(make_user("meg", "manager"))
    return client


@pytest.fixture
def launches(small_template, make_user, lead):
    """Four launches of the small checklist, as they happened:

    shop 1.0 → production: ana ticks, a check fails, the gate is overridden, it goes live and is rolled back;
    shop 1.1 → production: bo skips the backups with a reason, it goes live cleanly;
    blog 2.0 → staging: bo blocks the deploy and writes a note about the CDN; aborted;
    shop 1.2 → production: still in progress.
    """
    ana, bo = make_user("ana", "member"), make_user("bo", "member")
    production = services.environment_get_or_create("shop", "production")
    staging = services.environment_get_or_create("blog", "staging")

    first, _ = services.run_start(version=small_template, environment=production, version_label="1.0", actor=ana)
    services.run_item_set_state(item=item(first, "Tag the release"), state="done", actor=ana)
    verdict(item(first, "Health endpoint answers"), "failed", "HTTP 502")
    go_live(first)
    services.run_set_status(run=first, status="rolled_back", reason="Error rate doubled", actor=lead)

    second, _ = services.run_start(version=small_template, environment=production, version_label="1.1", actor=ana)
    services.run_item_set_state(item=item(second, "Backups are recent"), state="skipped", actor=bo, reason="Covered by the platform team")
    for text in ("Tag the release", "Deploy the build", "Health endpoint answers"):
        services.run_item_set_state(item=item(second, text), state="done", actor=bo)
    go_live(second)

    third, _ = services.run_start(version=small_template, environment=staging, version_label="2.0", actor=bo)
    services.run_item_set_state(item=item(third, "Deploy the build"), state="blocked", actor=bo, reason="Waiting for the AWS quota")
    services.note_add(run=third, body="CDN purge is slow today", actor=bo)
    services.run_set_status(run=third, status="aborted", reason="Launch window missed", actor=lead)

    fourth, _ = services.run_start(version=small_template, environment=production, version_label="1.2", actor=ana)
    return {"rolled_back": first, "clean": second, "aborted": third, "open": fourth}


def rows(page) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr data-run-id="(\d+)"', page.content.decode())]


def test_manager_filters_history_by_each_field(manager_browser, launches):
    get = lambda query: rows(manager_browser.get(f"/history/?{query}"))  # noqa: E731
    every = {r.pk for r in launches.values()}

    assert set(get("")) == every
    assert set(get("project=shop")) == every - {launches["aborted"].pk}
    assert get("environment=staging") == [launches["aborted"].pk]
    assert set(get("template=small-launch")) == every
    assert get("status=rolled_back") == [launches["rolled_back"].pk]
    # A person: who started it, ticked in it or signed it.
    assert set(get("person=bo")) == {launches["clean"].pk, launches["aborted"].pk}
    assert set(get("person=gil")) == {launches["rolled_back"].pk, launches["clean"].pk}
    assert get("person=nobody") == []
    # Text: versions and notes.
    assert get("q=cdn") == [launches["aborted"].pk]
    assert get("q=1.1") == [launches["clean"].pk]
    today = timezone.localdate()
    assert set(get(f"since={today}&until={today}")) == every
    assert get(f"since={today + timedelta(days=1)}") == []


def test_history_sorts_on_the_runs_own_counters_newest_first_by_default(manager_browser, launches):
    by_default = rows(manager_browser.get("/history/"))
    most_done = rows(manager_browser.get("/history/?sort=-done"))
    most_blocked = rows(manager_browser.get("/history/?sort=-blocked"))
    longest = rows(manager_browser.get("/history/?sort=-duration"))

    assert by_default == [launches[k].pk for k in ("open", "aborted", "clean", "rolled_back")]
    assert most_done[0] == launches["clean"].pk
    assert most_blocked[0] == launches["aborted"].pk
    assert len(longest) == 4


def test_each_history_row_tells_the_launch_story(manager_browser, launches):
    page = manager_browser.get("/history/?project=shop").content.decode()
    rolled = page.split(f'<tr data-run-id="{launches["rolled_back"].pk}"')[1].split("</tr>")[0]
    clean = page.split(f'<tr data-run-id="{launches["clean"].pk}"')[1].split("</tr>")[0]
    open_run = page.split(f'<tr data-run-id="{launches["open"].pk}"')[1].split("</tr>")[0]

    assert "1.0" in rolled and "ana" in rolled  # version, who started it
    assert re.search(r"\d+ min", rolled)  # start to go-live
    assert '<td class="bad">1</td>' in rolled  # one failed check
    assert "gil" in rolled and "override" in rolled  # who signed, the override marked
    assert "rolled back" in rolled and "Error rate doubled" in rolled
    assert "<td>3/6</td>" in clean and "override" not in clean
    assert "so far" in open_run


def test_exports_keep_the_filters(manager_browser, launches):
    as_csv = manager_browser.get("/history/?project=shop&sort=-done&format=csv")
    as_json = manager_browser.get("/history/?project=shop&status=rolled_back&format=json")

    table = list(csv.DictReader(io.StringIO(as_csv.content.decode())))
    body = as_json.json()
    assert as_csv["Content-Disposition"].startswith("attachment")
    assert [int(r["id"]) for r in table][0] == launches["clean"].pk and len(table) == 3
    assert table[0]["skipped"] == "1" and "Tech Lead: gil" in table[0]["signed_by"]
    assert body["count"] == 1 and body["filters"] == {"project": "shop", "status": "rolled_back"}
    unfiltered = manager_browser.get("/history/?format=json").json()
    assert unfiltered["filters"] == {} and unfiltered["count"] == 4
    both = manager_browser.get("/history/?status=completed&status=rolled_back&format=json").json()
    assert both["filters"] == {"status": ["completed", "rolled_back"]} and both["count"] == 2
    [row] = body["results"]
    assert row["failed_checks"] == 1 and row["rolled_back"] is True
    assert any(s["override_reason"] == "launch window" for s in row["signed_by"])


def test_filters_live_in_the_url_of_every_link_on_the_page(manager_browser, launches):
    page = manager_browser.get("/history/?project=shop&q=1&sort=-blocked").content.decode()

    assert 'href="?project=shop&amp;q=1&amp;sort=-blocked&amp;format=csv"' in page
    assert 'href="?project=shop&amp;q=1&amp;sort=-blocked&amp;format=json"' in page
    assert 'href="?project=shop&amp;q=1&amp;sort=blocked"' in page  # the column flips its order


BAD_FILTERS = [
    "status=bogus", "since=yesterday", "until=2024-02-30", "since=2024-13-01", "sort=password", "page=-3", "page=abc",
    "item_state=lost", "person=" + "x" * 5000, "q=%E2%80%AE%01", "project=%E2%80%AE", "template=99999999999999999999",
    "status=completed&status=nope", "override=maybe", "kind=%00", "until=9999-12-31", "since=0001-01-01",
    "since=9999-12-31T23:59:59", "until=0000-01-01", "sort=-", "sort=--done", "since=0001-01-01T00:00:00%2B05:00",
    "until=9999-12-31T23:00:00-05:00",
]


def test_bad_filter_values_answer_a_message_never_a_traceback(manager_browser, launches):
    for query in BAD_FILTERS:
        for path in ("/history/", "/reports/", "/history/?format=json&", "/history/?format=csv&"):
            answer = manager_browser.get(f"{path}{'' if path.endswith('&') else '?'}{query}")
            assert answer.status_code in (200, 400), (path, query)
            if answer.status_code == 400 and "format=" not in path and "%00" not in query:
                assert 'role="alert"' in answer.content.decode(), (path, query)


def test_reports_answer_the_managers_questions_and_link_to_their_runs(manager_browser, launches):
    page = manager_browser.get("/reports/")
    html = page.content.decode()

    assert page.status_code == 200
    for section in ("report-weekly", "report-failure-rate", "report-median", "report-blocked", "report-verification-kinds",
                    "report-failing-checks", "report-slow-sections", "report-overrides"):
        assert f'id="{section}"' in html, section
    assert "<svg" in html and "<script" not in html.split("<main>")[1]
    # Blocked and skipped items, with their reasons.
    assert "Deploy the build" in html and "Waiting for the AWS quota" in html
    assert "Backups are recent" in html and "Covered by the platform team" in html
    # Failing checks and gate overrides.
    assert "Health endpoint answers" in html and "http" in html
    assert "launch window" in html
    # The change failure rate this month: one rolled back of two gone live.
    assert "50.0%" in html

    # Each chart leads to the history rows behind it.
    links = {m for m in re.findall(r'href="(/history/\?[^"]+)"', html)}
    rolled_back = next(link for link in links if "status=rolled_back" in link and "status=completed" not in link and "since=" in link)
    blocked = next(link for link in links if "item=Deploy+the+build" in link)
    failing = next(link for link in links if "kind=http" in link and "check=" in link)
    overridden = next(link for link in links if "override=1" in link)
    follow = lambda link: rows(manager_browser.get(link.replace("&amp;", "&")))  # noqa: E731
    assert follow(rolled_back) == [launches["rolled_back"].pk]
    assert follow(blocked) == [launches["aborted"].pk]
    assert follow(failing) == [launches["rolled_back"].pk]
    assert follow(overridden) == [launches["rolled_back"].pk]


def test_reports_take_the_same_filters(manager_browser, launches):
    html = manager_browser.get("/reports/?environment=staging").content.decode()

    assert "Waiting for the AWS quota" in html
    assert "Covered by the platform team" not in html
    assert 'href="/history/?environment=staging"' in html


def test_median_to_go_live_is_the_same_computed_in_postgres_or_the_portable_way(launches):
    qs = history_queries.history_queryset(history_queries.HistoryFilters())

    in_database = {row["month"]: row["median"] for row in history_queries.monthly_trend(qs)}
    portable = {row["month"]: row["median"] for row in history_queries.monthly_trend(qs, portable=True)}

    assert in_database.keys() == portable.keys()
    for month, value in in_database.items():
        assert value is not None and abs((value - portable[month]).total_seconds()) < 0.001


def test_history_reports_and_compare_are_for_the_people_allowed(client, make_user, launches):
    a, b = launches["clean"], launches["rolled_back"]
    assert client.get("/reports/").status_code == 302  # to the login
    assert client.get(f"/runs/compare?a={a.pk}&b={b.pk}").status_code == 302
    client.force_login(make_user("mo2", "member"))
    assert client.get("/reports/").status_code == 403
    assert client.get("/history/?format=json").status_code == 403
    client.force_login(make_user("lea", "lead"))
    assert client.get("/reports/").status_code == 200


# --- Two runs side by side -----------------------------------------------------------------

EDITED = SMALL_CHECKLIST.replace("- [ ] Tag the release\n", "- [ ] Tag the release in git\n").replace(
    "- [ ] Deploy the build\n", "- [ ] Deploy the build\n- [ ] Purge the CDN\n"
).replace("  - [ ] Restore tested <!-- optional -->\n", "")


def test_compare_with_the_previous_run_across_two_template_versions(manager_browser, small_template, member, make_user):
    environment = services.environment_get_or_create("shop", "production")
    before, _ = services.run_start(version=small_template, environment=environment, version_label="3.0", actor=member)
    services.run_item_set_state(item=item(before, "Deploy the build"), state="done", actor=member)
    services.run_item_set_state(item=item(before, "Backups are recent"), state="done", actor=member)
    go_live(before)
    v2 = services.template_version_create(small_template.template, md.parse(EDITED), actor=member)
    after, _ = services.run_start(version=v2, environment=environment, version_label="3.1", actor=member)
    other = make_user("oz", "member")
    services.run_item_set_state(item=item(after, "Deploy the build"), state="blocked", actor=other, reason="Quota")
    services.run_item_set_state(item=item(after, "Backups are recent"), state="done", actor=member)
    go_live(after)
    manager_browser.force_login(make_user("lee", "lead", "member"))

    run_page = manager_browser.get(after.get_absolute_url()).content.decode()
    link = re.search(r'href="(/runs/\d+/compare-previous)"', run_page).group(1)
    redirected = manager_browser.get(link)
    page = manager_browser.get(redirected["Location"])
    html = page.content.decode()

    assert redirected["Location"] == f"/runs/compare?a={before.pk}&b={after.pk}"
    assert page.status_code == 200
    differences, same = html.split('id="compare-differences"')[1].split('id="compare-same"')
    assert "Deploy the build" in differences and "Quota" in differences and "oz" in differences
    assert "Tag the release in git" in differences and "Purge the CDN" in differences  # only in B
    assert "Restore tested" in differences and "not in this version" in differences  # only in A
    assert "Backups are recent" in same  # the same in both, after the differences
    assert "Sections: first tick to last" in html and "Deploy" in html.split('id="compare-sections"')[1]


def test_compare_refuses_what_is_not_a_run(manager_browser, launches):
    a = launches["clean"].pk
    assert manager_browser.get(f"/runs/compare?a={a}&b=abc").status_code == 400
    assert manager_browser.get(f"/runs/compare?a={a}").status_code == 400
    assert manager_browser.get(f"/runs/compare?a={a}&b=999999").status_code == 404
    assert manager_browser.get(f"/runs/{a}/compare-previous").status_code == 302  # 1.0 came before it
    assert manager_browser.get(f"/runs/{launches['rolled_back'].pk}/compare-previous").status_code == 404


# --- Scale: generated history, the same queries at 100 and 1,000 runs ------------------------


def test_generated_history_keeps_the_kernels_counters(db):
    call_command("generate_history", runs=60, items=24, seed=3, stdout=io.StringIO())

    runs = Run.objects.annotate(
        t=Count("items"),
        d=Count("items", filter=Q(items__state="done")),
        s=Count("items", filter=Q(items__state="skipped")),
        b=Count("items", filter=Q(items__state="blocked")),
        g=Count("items", filter=Q(items__holds_gate=True)),
    )
    assert runs.count() == 60
    for run in runs:
        assert (run.items_total, run.items_done, run.items_skipped, run.items_blocked, run.gate_open) == (run.t, run.d, run.s, run.b, run.g)
    for section in RunSection.objects.annotate(t=Count("items"), c=Count("items", filter=Q(items__state__in=["done", "skipped"]))):
        assert (section.items_total, section.items_closed) == (section.t, section.c)
    statuses = set(Run.objects.values_list("status", flat=True))
    assert {"completed", "rolled_back"} <= statuses
    # Nothing bypasses the kernel afterwards: the guard is closed again.
    with pytest.raises(KernelBypass):
        Run.objects.filter(pk=runs[0].pk).update(version_label="x")


def queries(client, path: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        answer = client.get(path)
    assert answer.status_code == 200, path
    return len(captured)


def test_history_reports_and_compare_cost_the_same_queries_at_100_and_1000_runs(manager_browser):
    pages = ["/history/", "/history/?project=shop&sort=-blocked&q=1&person=ana", "/reports/", "/reports/?environment=production",
             "/reports/?person=ana"]

    def measure():
        pair = Run.objects.filter(status="completed").order_by("-id").values_list("pk", flat=True)[:2]
        return [queries(manager_browser, path) for path in pages] + [queries(manager_browser, f"/runs/compare?a={pair[1]}&b={pair[0]}")]

    # Few items a run: what grows here is the number of runs (and the test's own time with items).
    call_command("generate_history", runs=100, items=8, seed=1, stdout=io.StringIO())
    at_100 = measure()
    call_command("generate_history", runs=900, items=8, seed=2, stdout=io.StringIO())
    at_1000 = measure()

    assert Run.objects.count() == 1000
    assert at_100 == at_1000
    assert max(at_1000) <= 20


def test_a_bare_until_date_takes_in_that_whole_day_on_the_page_and_in_the_api(manager_browser, api_as, make_user, launches):
    today = timezone.localdate().isoformat()
    api = api_as(make_user("pia", "manager"))

    assert len(rows(manager_browser.get(f"/history/?until={today}"))) == 4
    assert api.get("/api/v1/runs", until=today).json_body["count"] == 4
    assert api.get("/api/v1/runs", since="0001-01-01T00:00:00+05:00").status_code == 400
