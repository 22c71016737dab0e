"""Five colleagues tick one run at once: what one does, the others see without reloading."""

import re

import pytest
from playwright.sync_api import expect

from checklists import markdown as md
from checklists import services
from checklists.models import RunItem

from ..conftest import SEEDS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def launch(make_user):
    ana = make_user("ana", "member")
    make_user("ben", "member")
    version = services.template_import(md.parse_bytes((SEEDS / "dreamcatcher-production.md").read_bytes()), actor=ana)
    environment = services.environment_get_or_create("dreamcatcher", "production")
    run, _ = services.run_start(version=version, environment=environment, version_label="1.4.0", actor=ana)
    return run


def item_row(page, item):
    return page.locator(f'[data-item-id="{item.pk}"]')


def test_tick_block_and_note_show_up_in_a_second_browser(launch, login, live_server, screenshots):
    items = list(RunItem.objects.filter(run=launch).order_by("position")[:3])
    ana, ben = login("ana"), login("ben")
    url = f"{live_server.url}{launch.get_absolute_url()}"
    ana.goto(url)
    ben.goto(url)
    # Ben starts typing a note on the third item before anything changes.
    ben_menu = item_row(ben, items[2]).locator(".item-menu")
    ben_menu.locator("summary").click()
    ben_menu.locator(".note-form textarea").fill("half-written thought")

    item_row(ana, items[0]).locator('[data-action="toggle"]').click()
    expect(item_row(ana, items[0])).to_have_attribute("data-state", "done")

    blocked = item_row(ana, items[1])
    blocked.locator(".item-menu summary").click()
    blocked.locator(".reason-form input[name=reason]").fill("AWS quota not raised yet")
    blocked.locator(".reason-form button[value=blocked]").click()
    expect(item_row(ana, items[1])).to_have_attribute("data-state", "blocked")

    noted = item_row(ana, items[2])
    noted.locator(".item-menu summary").click()
    noted.locator(".note-form textarea").fill("Firewall rules **reviewed** with ops")
    noted.locator(".note-form button").click()
    expect(item_row(ana, items[2]).locator(".item-notes")).to_contain_text("Firewall rules reviewed with ops")

    # Ben never reloads: the poll brings all three within two seconds.
    expect(item_row(ben, items[0])).to_have_attribute("data-state", "done", timeout=2500)
    expect(item_row(ben, items[1])).to_have_attribute("data-state", "blocked", timeout=2500)
    expect(item_row(ben, items[1])).to_contain_text("AWS quota not raised yet")
    expect(item_row(ben, items[2]).locator(".item-notes strong")).to_have_text("reviewed", timeout=2500)
    expect(ben.locator("#run-progress")).to_contain_text("1 done")
    # ...and what Ben was typing is still there.
    expect(item_row(ben, items[2]).locator(".note-form textarea")).to_have_value("half-written thought")
    assert RunItem.objects.get(pk=items[1].pk).reason == "AWS quota not raised yet"
    # The menu of a row the poll redrew opens and works (its forms come when it is opened).
    redrawn = item_row(ben, items[1])
    redrawn.locator(".item-menu summary").click()
    redrawn.locator(".item-menu button[value=in_progress]").click()
    expect(item_row(ben, items[1])).to_have_attribute("data-state", "in_progress")
    expect(item_row(ana, items[1])).to_have_attribute("data-state", "in_progress", timeout=2500)

    ana.evaluate("window.scrollTo(0, 0)")
    ana.screenshot(path=str(screenshots / "run-page-desktop.png"), full_page=False)


def test_blocking_without_a_reason_shows_the_refusal_in_place(launch, login, live_server):
    item = RunItem.objects.filter(run=launch).order_by("position").first()
    page = login("ana")
    page.goto(f"{live_server.url}{launch.get_absolute_url()}")

    row = item_row(page, item)
    row.locator(".item-menu summary").click()
    row.locator(".reason-form button[value=blocked]").click()

    expect(row.locator(".item-error")).to_contain_text("reason is required")
    expect(row).to_have_attribute("data-state", "todo")


def test_keyboard_moves_and_toggles(launch, login, live_server):
    first, second = RunItem.objects.filter(run=launch).order_by("position")[:2]
    page = login("ana")
    page.goto(f"{live_server.url}{launch.get_absolute_url()}")

    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("x")
    expect(item_row(page, second)).to_have_attribute("data-state", "done")
    page.keyboard.press("k")
    page.keyboard.press("n")
    expect(item_row(page, first).locator(".note-form textarea")).to_be_focused()


def test_the_run_page_on_a_phone(launch, login, live_server, screenshots):
    page = login("ben", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page.goto(f"{live_server.url}{launch.get_absolute_url()}")

    expect(page.locator("#run-progress")).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    if width > 400:
        print(page.evaluate("""Array.from(document.querySelectorAll('body *')).filter(e => e.getBoundingClientRect().right > 392).slice(0, 12).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right)).join('\\n')"""))
    assert width <= 400, f"the page scrolls sideways on a phone ({width}px)"
    page.screenshot(path=str(screenshots / "run-page-phone.png"), full_page=False)


def test_pages_load_nothing_from_another_origin(launch, login, live_server):
    page = login("ana")
    foreign = []
    page.on("request", lambda request: foreign.append(request.url) if not request.url.startswith(live_server.url) else None)
    page.goto(f"{live_server.url}{launch.get_absolute_url()}")
    page.wait_for_timeout(1500)

    assert foreign == []
    assert re.search(r"htmx", page.content())
