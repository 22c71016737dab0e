"""Many people open one launch: each sees the rows their own rights allow, with their own CSRF
token, and a change reaches every page, however the server shares the work of drawing rows."""

import re

import pytest
from django.test import Client

from checklists import services

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true", "HX-Current-URL": "http://testserver/"}


def signed_in(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def row(html: str, item_id: int) -> str:
    match = re.search(rf'<li id="item-{item_id}".*?</li>\s*(?=<li id="item-|</ul>)', html, re.S)
    assert match, f"item {item_id} not on the page"
    return match.group(0)


def test_a_viewer_after_a_member_sees_no_controls_and_the_member_after_a_viewer_sees_them(run, member, make_user):
    viewer = make_user("vic", "viewer")
    item = run.items.order_by("position").first()

    member_first = row(signed_in(member).get(run.get_absolute_url()).content.decode(), item.pk)
    viewer_next = row(signed_in(viewer).get(run.get_absolute_url()).content.decode(), item.pk)
    member_again = row(signed_in(member).get(run.get_absolute_url()).content.decode(), item.pk)

    assert "Actions for:" in member_first and "Actions for:" in member_again
    assert "Actions for:" not in viewer_next
    assert 'data-action="toggle"' in viewer_next and " disabled>" in viewer_next


def test_each_person_ticks_with_the_token_of_their_own_page(run, member, make_user):
    """Two members open the page one after the other; the second one's forms carry the second
    one's token (never the first's), so a plain form post from either page is accepted."""
    ben = make_user("ben", "member")
    item = run.items.order_by("position").first()
    mo_page, ben_page = signed_in(member), signed_in(ben)

    tokens = {}
    for name, client in (("mo", mo_page), ("ben", ben_page)):
        html = row(client.get(run.get_absolute_url()).content.decode(), item.pk)
        found = set(re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', html))
        assert len(found) == 1
        tokens[name] = found.pop()

    answer = ben_page.post(f"/runs/{run.pk}/items/{item.pk}/state", {"state": "done", "csrfmiddlewaretoken": tokens["ben"]}, headers=HTMX)
    assert answer.status_code == 200
    assert 'data-state="done"' in answer.content.decode()

    refused = mo_page.post(f"/runs/{run.pk}/items/{item.pk}/state", {"state": "todo", "csrfmiddlewaretoken": "x" * 64}, headers=HTMX)
    assert refused.status_code == 403


def test_a_note_and_a_tick_by_someone_else_reach_a_page_that_already_drew_the_row(run, member, make_user):
    ana = make_user("ana", "member")
    item = run.items.order_by("position").first()
    watcher = signed_in(member)
    page = watcher.get(run.get_absolute_url()).content.decode()
    revision = re.search(r'data-revision="(\d+)"', page).group(1)

    services.note_add(run=run, body="DNS TTL lowered to **60 s**", actor=ana, item=item)
    services.run_item_change(run_id=run.pk, item_id=item.pk, actor=ana, state="in_progress")

    poll = watcher.get(f"/runs/{run.pk}/poll?rev={revision}&status=in_progress", headers=HTMX).content.decode()
    changed = row(poll + "</ul>", item.pk)
    assert 'data-state="in_progress"' in changed
    assert "<strong>60 s</strong>" in changed and "ana" in changed


def test_an_items_actions_come_when_its_menu_is_opened_with_the_openers_own_token(run, member, make_user):
    """A 300-item page carries each row's menu as an address, not as five forms: Mo opens one
    menu and gets its forms, with her own CSRF token; the note she posts from it lands. A
    viewer asking for the same menu is refused; without JavaScript it is a page of its own."""
    viewer = make_user("vic", "viewer")
    item = run.items.order_by("position").first()
    mo_page = signed_in(member)
    page_row = row(mo_page.get(run.get_absolute_url()).content.decode(), item.pk)
    assert f'hx-get="/runs/{run.pk}/items/{item.pk}/menu"' in page_row and "Note on this item" not in page_row

    menu = mo_page.get(f"/runs/{run.pk}/items/{item.pk}/menu", headers=HTMX).content.decode()
    assert "Note on this item" in menu and "Blocked" in menu and "Take it" in menu
    token = set(re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', menu)).pop()
    noted = mo_page.post(f"/runs/{run.pk}/notes", {"item": item.pk, "body": "Smoke test passed", "csrfmiddlewaretoken": token}, headers=HTMX)
    assert noted.status_code == 200 and item.notes.get().body == "Smoke test passed"

    assert signed_in(viewer).get(f"/runs/{run.pk}/items/{item.pk}/menu", headers=HTMX).status_code == 403
    plain = mo_page.get(f"/runs/{run.pk}/items/{item.pk}/menu").content.decode()
    assert "Back to the run" in plain and "Note on this item" in plain


def test_a_viewer_made_a_member_while_the_page_is_open_gets_it_redrawn_with_controls(run, member, make_user):
    """Vic watches the launch with view rights; the lead grants him the member role. His page's
    next poll with news reloads it, so every row offers him its controls, not only those that changed."""
    import os

    from django.core.management import call_command

    vic = make_user("vic", "viewer")
    vic_page = signed_in(vic)
    page = vic_page.get(run.get_absolute_url()).content.decode()
    poll = re.search(r'<div id="poller" hx-get="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert "work=0" in poll

    call_command("grant", "vic", "member", stdout=open(os.devnull, "w"))
    services.run_item_set_state(item=run.items.order_by("position").first(), state="done", actor=member)
    answer = vic_page.get(poll, headers=HTMX)

    assert answer.status_code == 204 and answer["HX-Refresh"] == "true"
