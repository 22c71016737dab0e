"""A manager opens the reports in a real browser, reads the charts, and follows a bar to the
runs behind it."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_manager_reads_the_reports_and_follows_a_chart_to_its_runs(make_user, login, live_server, screenshots):
    make_user("meg", "manager")
    call_command("generate_history", runs=160, items=30, weeks=26, seed=13, stdout=io.StringIO())
    page = login("meg", viewport={"width": 1280, "height": 900})
    failed_requests = []
    page.on("requestfailed", lambda request: failed_requests.append(request.url))

    page.goto(f"{live_server.url}/reports/")

    for heading in ("Go-lives per week, by outcome", "Change failure rate per month", "Median time from start to go-live",
                    "Items most often blocked or skipped", "Verification failure rate per kind", "Checks failing most",
                    "Slowest sections", "Gate overrides"):
        expect(page.get_by_role("heading", name=heading)).to_be_visible()
    expect(page.locator("#report-weekly svg rect").first).to_be_visible()
    expect(page.locator("#report-median svg rect").first).to_be_visible()
    # Nothing comes from another origin, and nothing failed to load.
    assert all(url.startswith(live_server.url) for url in page.evaluate("performance.getEntries().map(e => e.name)") if url.startswith("http"))
    assert failed_requests == []
    page.screenshot(path=str(screenshots / "reports.png"), full_page=True)

    # A bar of the weekly chart is a link to that week's runs of that outcome.
    bar = page.locator("#report-weekly svg a").last
    href = bar.get_attribute("href")
    bar.click()

    expect(page).to_have_url(re.compile(r"/history/\?.*since=\d{4}-\d\d-\d\d&until=\d{4}-\d\d-\d\d&status=\w+"))
    assert page.url.endswith(href)
    expect(page.locator("tr[data-run-id]").first).to_be_visible()
    expect(page.get_by_role("heading", name="Deployment history")).to_be_visible()
