"""Launch day with one of our users' own checklists, from the Markdown file to the signed report.

For each seed: a lead imports the file with its suggested checks, points the environment at
servers on this machine (an HTTPS service with a certificate from the worker's internal CA,
the local Redis and PostgreSQL, a folder of backups, a DNS server that knows the service's
name), an engineer starts the run and presses Verify all, the verdicts arrive on the page by
themselves, the team ticks the rest and skips with a reason what cannot pass here, the lead
signs off, and the Markdown report holds the seed's own structure with who, when and evidence.
"""

from __future__ import annotations

import datetime as dt
import re
import ssl
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from playwright.sync_api import expect

from checklists import markdown as md
from checklists import services
from checklists.models import ChecklistTemplate, Run, RunItem, VerificationResult

from ..conftest import SEEDS
from ..servers import LocalServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SECURE_HEADERS = {
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
    "Content-Security-Policy": "default-src 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}
FINISHED = ("passed", "failed", "error")


def service_for(world, name: str) -> LocalServer:
    """The team's service as this machine can host it: HTTPS on a free port under its own
    name, every health path answering, the security headers a launch wants."""
    now = dt.datetime.now(dt.timezone.utc)
    cert = world.ca.issue_cert(name, not_before=now - dt.timedelta(days=1), not_after=now + dt.timedelta(days=90))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    server = LocalServer(tls=context)
    server.route("/", 200, "welcome", headers=SECURE_HEADERS)
    return server.start()


def answer_health_paths(server: LocalServer, checks: list[md.Check]) -> None:
    for check in checks:
        url = check.params.get("url", "")
        if check.kind in ("http", "headers") and url.startswith("{{ base_url }}"):
            path = urlsplit("https://x" + url.removeprefix("{{ base_url }}")).path or "/"
            if path not in server.routes:
                server.route(path, 200, '{"status": "ok"}', headers=SECURE_HEADERS)


def document_checks(document: md.Document) -> list[md.Check]:
    return [item.check for item, _ in document.iter_items() if item.check]


def headings(document: md.Document) -> list[str]:
    """The report's headings: the checklist's own, less its sign-off block (the report has its own)."""
    return [section.title for section in document.iter_sections() if not section.roles and section.title != "Sign-Off"]


def row(page, item_id: int):
    return page.locator(f'[data-item-id="{item_id}"]')


@pytest.fixture
def team(make_user):
    return {
        "lena": make_user("lena", "lead", "Tech Lead", "DevOps Engineer", "Security Lead", "Product Manager"),
        "sam": make_user("sam", "member"),
        "ana": make_user("ana", "member"),
    }


@pytest.mark.parametrize("seed", ["saas-chat-production.md", "llm-gateway-production.md", "dreamcatcher-production.md"])
def test_a_seed_checklist_verifies_itself_and_ends_in_a_signed_report(seed, team, api_as, celery_worker, worker_world, login, live_server, tmp_path, screenshots):
    slug = seed.removesuffix("-production.md")
    path = SEEDS / seed
    expected = md.parse_bytes(path.read_bytes())
    services.suggested_checks_attach(expected)
    checks = document_checks(expected)

    # --- The lead imports the file: the preview lists every suggestion with its reason. ------
    lena = login("lena")
    lena.set_default_navigation_timeout(30_000)  # 300-item pages on a busy 2-core machine
    lena.goto(f"{live_server.url}/templates/import")
    lena.set_input_files("input[name=file]", str(path))
    lena.click("button[name=preview]")
    suggestions = lena.locator(".suggested-checks input[name=attach]")
    expect(lena.locator(".suggested-checks legend")).to_contain_text(f"Attach all {len(checks)} suggested checks")
    expect(suggestions).to_have_count(len(checks))
    expect(lena.locator(".suggested-checks li").first).to_contain_text("from “")
    lena.click("button[name=save]")
    expect(lena.locator("#flash")).to_contain_text(f"{len(checks)} checks ({len(checks)} of them suggested)")
    template = ChecklistTemplate.objects.get()
    version = template.versions.get()
    assert version.check_count == len(checks)

    # --- Its environment points at this machine. ---------------------------------------------
    name = f"{slug}.launch.test"
    service = service_for(worker_world, name)
    answer_health_paths(service, checks)
    worker_world.add_records({(name, "A"): ["127.0.0.1"], (name, "AAAA"): ["::1"], (name, "MX"): [f"10 mail.{name}."]})
    backups = worker_world.backup_root / slug
    backups.mkdir(exist_ok=True)
    (backups / "nightly.sql.gz").write_bytes(b"\x1f\x8b" + b"backup" * 1000)
    database, redis = settings.DATABASES["default"], urlsplit(settings.CELERY_BROKER_URL)
    environment = services.environment_get_or_create(slug, "production")
    for variable, value in {
        "base_url": f"https://{name}:{service.port}",
        "host": f"{name}:{service.port}",
        "db_host": f"{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}",
        "redis_host": f"{redis.hostname}:{redis.port or 6379}",
        "backup_path": f"{backups}/*.sql.gz",
    }.items():
        services.environment_variable_set(environment=environment, name=variable, value=value, secret=False)

    # --- An engineer starts the run; the page says what the environment still lacks. ---------
    sam = login("sam", viewport={"width": 1280, "height": 900})
    sam.set_default_navigation_timeout(30_000)
    sam.goto(f"{live_server.url}/runs/new?version={version.pk}")
    sam.fill("input[name=project]", slug)
    sam.fill("input[name=environment]", "production")
    sam.fill("input[name=version_label]", "2.0.0")
    sam.click("button[name=load]")
    missing = [n for n in services.document_variables(expected) if n not in ("base_url", "host", "db_host", "redis_host", "backup_path")]
    for variable in missing:
        expect(sam.locator(".start-form")).to_contain_text(f"Still missing for this environment: {variable}")
    sam.click("button[name=confirm]")
    sam.wait_for_url(re.compile(r"/runs/\d+/$"))
    run = Run.objects.get()

    # --- Verify all: verdicts land on the page without a reload. ------------------------------
    sam.get_by_role("button", name="Verify all", exact=True).click()
    badges = sam.locator(".badge.check")
    expect(badges).to_have_count(len(checks))
    unsettled = sam.locator(".badge.check.check-none, .badge.check.check-queued, .badge.check.check-running")
    expect(unsettled).to_have_count(0, timeout=60_000)
    verdicts = {r.item_id: r for r in VerificationResult.objects.filter(run=run)}
    assert len(verdicts) == len(checks)
    passed = {pk for pk, r in verdicts.items() if r.status == "passed"}
    kinds_passed = {verdicts[pk].kind for pk in passed}
    # Everything this machine can host proves itself: the service, its certificate, its name,
    # its headers, the databases beside it and last night's backup.
    assert {"http", "tls", "dns", "tcp", "backup", "headers"} & {c.kind for c in checks} <= kinds_passed, {
        (r.kind, r.message) for r in verdicts.values() if r.status != "passed"
    }
    expect(sam.locator(".badge.check.check-passed")).to_have_count(len(passed))
    for pk in passed:
        expect(row(sam, pk)).to_have_attribute("data-state", "done")
    # The README's picture: the first section whose checks have answered.
    first = min(verdicts, key=lambda pk: (verdicts[pk].item.position))
    row(sam, first).evaluate("el => { el.scrollIntoView({block: 'start'}); window.scrollBy(0, -140); }")
    sam.mouse.move(700, 420)
    sam.screenshot(path=str(screenshots / f"seed-{slug}-verified.png"))

    # --- What cannot pass on this machine is skipped with the reason; the rest is ticked. ----
    not_passing = {pk: r for pk, r in verdicts.items() if pk not in passed}
    for pk, result in not_passing.items():
        item_row = row(sam, pk)
        item_row.locator(".item-menu summary").click()
        item_row.locator(".reason-form input[name=reason]").fill(f"cannot pass on the launch rehearsal box: {result.message[:80]}")
        item_row.locator(".reason-form button[value=skipped]").click()
        expect(item_row).to_have_attribute("data-state", "skipped")
    # Sam works down the first items at the keyboard (j to move, x to tick) while Ana, on
    # the other side of the launch, ticks the rest from her terminal through the API; Sam's
    # page shows hers arrive without a reload.
    rows = sam.eval_on_selector_all("[data-item-id]", "rows => rows.map(r => [Number(r.dataset.itemId), r.dataset.state])")
    assert len(rows) == run.items_total
    by_keyboard = [pk for pk, state in rows[:30] if state == "todo"]
    for pk, state in rows[:30]:
        sam.keyboard.press("j")
        if state == "todo":
            sam.keyboard.press("x")
    ana = api_as(team["ana"])
    for pk, state in rows[30:]:
        if state == "todo":
            assert ana.post(f"/api/v1/runs/{run.pk}/items/{pk}", {"state": "done"}).status_code == 200
    expect(sam.locator('[data-item-id][data-state="todo"]')).to_have_count(0, timeout=15_000)
    assert set(RunItem.objects.filter(pk__in=by_keyboard).values_list("changed_by_name", flat=True)) == {"sam"}
    expect(sam.locator("#signoff .gate-met")).to_be_visible()

    # --- The lead signs off for every role the checklist names. ------------------------------
    run.refresh_from_db()
    lena.goto(f"{live_server.url}{run.get_absolute_url()}")
    for role in run.required_roles or [None]:
        form = lena.locator(".signoff-form")
        if role:
            form.locator("select[name=role]").select_option(role)
        form.locator("button[value=approve]").click()
        # The last approval takes the run live and reloads the whole 300-item page: slow on a busy machine.
        expect(lena.locator("#signoff .signoffs")).to_contain_text(f"{role or 'Lead'}: Approved by lena", timeout=20_000)
    run.refresh_from_db()
    assert run.is_live
    expect(sam.locator("#run-status .status")).to_have_text("Live", timeout=20_000)

    # --- The Markdown report: the seed's structure, marks, who and when, one line per check. -
    with lena.expect_download() as download:
        lena.get_by_role("link", name="Markdown", exact=True).click()
    report = (tmp_path / "report.md")
    download.value.save_as(report)
    text = report.read_text()
    report_headings = [line.lstrip("#").strip() for line in text.splitlines()[1:] if line.startswith("## ") or line.startswith("### ") or line.startswith("#### ")]
    assert report_headings == [*headings(expected), "Sign-Off"]
    run.refresh_from_db()
    assert len(re.findall(r"^\s*- \[x\] ", text, re.M)) == run.items_done + len(run.required_roles or [None])
    assert len(re.findall(r"^\s*- \[-\] ", text, re.M)) == run.items_skipped == len(not_passing)
    assert re.search(r"— _done by sam, \d{4}-\d\d-\d\d \d\d:\d\d UTC_", text)
    assert re.search(r"— _done by ana, \d{4}-\d\d-\d\d \d\d:\d\d UTC_", text)
    assert re.search(r"— _done by verification, \d{4}-\d\d-\d\d \d\d:\d\d UTC_", text)
    assert len(re.findall(r"^\s*Verification \((\w+)\): \*\*(passed|failed|error)\*\*", text, re.M)) == len(checks)
    assert "cannot pass on the launch rehearsal box" in text
    for role in run.required_roles or ["Lead approval"]:
        assert re.search(rf"^- \[x\] {re.escape(role)} — approved by lena, ", text, re.M)
    service.stop()
