"""The Content-Security-Policy forbids inline script, style attributes and eval, and no page
needs them: an admin walks every page (and uses the run page's htmx) with no violation."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from checklists import markdown as md
from checklists import services

from ..conftest import SEEDS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Records every violation the browser reports, from the first byte of each page on.
WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(
  `${e.violatedDirective} blocked ${e.blockedURI || 'inline'} at ${e.sourceFile}:${e.lineNumber} ${e.sample}`));
"""


@pytest.fixture
def admin_browser(make_user, login):
    admin = make_user("root", "admin")
    version = services.template_import(md.parse_bytes((SEEDS / "llm-gateway-production.md").read_bytes()), actor=admin)
    environment = services.environment_get_or_create("gateway", "production")
    services.environment_variable_set(environment=environment, name="base_url", value="https://gw.example.test", secret=False)
    run, _ = services.run_start(version=version, environment=environment, version_label="3.1", actor=admin)
    page = login("root")
    page.context.add_init_script(WATCH)
    return page, version, environment, run


def violations(page) -> list[str]:
    return page.evaluate("window.__csp || []")


def test_every_page_loads_under_the_policy_without_a_violation(admin_browser, live_server):
    page, version, environment, run = admin_browser
    console = []
    page.on("console", lambda message: console.append(message.text) if "Content Security Policy" in message.text else None)
    pages = [
        "/", "/history/", "/templates/", "/templates/import", f"/templates/{version.template.pk}/",
        f"/templates/{version.template.pk}/edit", "/environments/", f"/environments/{environment.pk}/",
        f"/runs/new?version={version.pk}", f"/runs/{run.pk}/", f"/runs/{run.pk}/report",
        "/admin/", "/admin/checklists/run/", f"/admin/checklists/run/{run.pk}/change/", "/admin/auth/user/",
    ]
    seen = {}
    for path in pages:
        answer = page.goto(f"{live_server.url}{path}")
        assert answer.status == 200, path
        assert "script-src 'self'" in answer.headers["content-security-policy"], path
        page.wait_for_load_state("networkidle")
        seen[path] = violations(page)

    assert {path: found for path, found in seen.items() if found} == {}
    assert console == []
    # ...and the watch does see a violation: a style attribute set from script is refused.
    page.evaluate("document.body.setAttribute('style', 'color: red')")
    page.wait_for_timeout(100)
    assert any(v.startswith("style-src") for v in violations(page))


def test_the_run_page_works_under_the_policy(admin_browser, live_server):
    page, _, _, run = admin_browser
    page.goto(f"{live_server.url}{run.get_absolute_url()}")
    item = run.items.order_by("position").first()
    row = page.locator(f'[data-item-id="{item.pk}"]')

    # A note through htmx: the form empties itself afterwards (no hx-on, no eval).
    row.hover()
    row.locator(".item-menu summary").click()
    row.locator(".note-form textarea").fill("checked with **ops**")
    row.locator(".note-form button").click()
    expect(row.locator(".item-notes strong")).to_have_text("ops")
    expect(page.locator(f'[data-item-id="{item.pk}"] .note-form textarea')).to_have_value("")
    row.locator('[data-action="toggle"]').click()
    expect(row).to_have_attribute("data-state", "done")
    page.wait_for_timeout(2500)  # a poll or two

    assert violations(page) == []
