"""Mo is ticking items on a run page when his session expires: the next live poll or tick
takes him to the login page, and after logging in he is back on the run, not on a poll URL."""

import pytest
from django.contrib.sessions.models import Session

from checklists import services

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"  # what conftest's make_user gives everyone


@pytest.fixture
def run(small_template, lead):
    environment = services.environment_get_or_create("shop", "production")
    run, _ = services.run_start(version=small_template, environment=environment, version_label="1.0", actor=lead)
    return run


@pytest.fixture
def mo_on_the_run_page(client, member, run):
    client.force_login(member)
    assert client.get(f"/runs/{run.pk}/").status_code == 200
    Session.objects.all().delete()  # the session expires while the page stays open
    return client


def htmx(run, current_url=None):
    headers = {"HX-Request": "true"}
    headers["HX-Current-URL"] = current_url if current_url is not None else f"http://testserver/runs/{run.pk}/"
    return headers


def test_an_expired_poll_sends_him_to_log_in_and_back_to_the_run(mo_on_the_run_page, run):
    client = mo_on_the_run_page

    poll = client.get(f"/runs/{run.pk}/poll", {"rev": run.revision}, headers=htmx(run))

    assert poll.status_code == 204
    assert poll["HX-Redirect"] == f"/accounts/login/?next=/runs/{run.pk}/"

    login_page = client.get(poll["HX-Redirect"])
    assert f'name="next" value="/runs/{run.pk}/"' in login_page.content.decode()

    logged_in = client.post("/accounts/login/", {"username": "mo", "password": PASSWORD, "next": f"/runs/{run.pk}/"})

    assert logged_in.status_code == 302
    assert logged_in["Location"] == f"/runs/{run.pk}/"
    assert client.get(logged_in["Location"]).status_code == 200


def test_an_expired_tick_does_the_same_and_ticks_nothing(mo_on_the_run_page, run):
    item = run.items.order_by("position").first()

    answer = mo_on_the_run_page.post(f"/runs/{run.pk}/items/{item.pk}/state", {"state": "done"}, headers=htmx(run))

    assert answer.status_code == 204
    assert answer["HX-Redirect"] == f"/accounts/login/?next=/runs/{run.pk}/"
    item.refresh_from_db()
    assert item.state == "todo"


def test_the_page_keeps_its_filter_in_next(mo_on_the_run_page, run):
    answer = mo_on_the_run_page.get(f"/runs/{run.pk}/poll", headers=htmx(run, f"http://testserver/runs/{run.pk}/?show=open"))

    assert answer["HX-Redirect"] == f"/accounts/login/?next=/runs/{run.pk}/%3Fshow%3Dopen"


@pytest.mark.parametrize(
    "current_url",
    ["https://evil.example/runs/1/", "//evil.example/runs/1/", "javascript:alert(1)", ""],
)
def test_a_current_url_from_elsewhere_is_not_followed(mo_on_the_run_page, run, current_url):
    answer = mo_on_the_run_page.get(f"/runs/{run.pk}/poll", headers=htmx(run, current_url))

    assert answer.status_code == 204
    assert answer["HX-Redirect"] == "/accounts/login/"


def test_a_page_load_without_htmx_still_redirects_plainly(client, run):
    answer = client.get(f"/runs/{run.pk}/")

    assert answer.status_code == 302
    assert answer["Location"] == f"/accounts/login/?next=/runs/{run.pk}/"
