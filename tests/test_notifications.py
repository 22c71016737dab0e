"""Issue 15: the people who should know hear at once, and a failing receiver never slows a launch.

The receivers are real HTTP servers on 127.0.0.1 (and one on 127.0.0.2, the address the
worker's world denies) that check the signature and answer what a story needs; email goes
through Django's locmem backend. Most stories deliver the outbox in-process (the outbox's own
deliver function, as a worker calls it); one drives a real worker through a hanging receiver
and a broker outage.
"""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import threading
import time

import pytest
from django.core import mail
from django.utils import timezone

from checklists import services
from checklists.models import NotificationReceiver, OutboxMessage
from checklists.services.outbox import outbox_deliver

from .conftest import beat_sweeps_outbox, wait_until
from .stories import go_live, verdict

BASE = "http://deploycheck.test"
EVERY_EVENT = ["run.start", "item.blocked", "verification.failed", "signoff.approve", "signoff.reject", "run.live", "run.status"]


class Receiver(http.server.ThreadingHTTPServer):
    """A webhook receiver: records every POST with whether its signature holds under `secret`,
    answers the statuses scripted in `answers` (then 200), and on /hang holds the request
    until `release` is set."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, host: str = "127.0.0.1"):
        super().__init__((host, 0), _Handler)
        self.secret = ""
        self.got: list[dict] = []
        self.answers: list[int] = []
        self.holding = threading.Event()
        self.release = threading.Event()
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def url(self, path: str = "/hook") -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}{path}"

    def events(self, path: str = "/hook") -> list[str]:
        return [g["body"].get("event") for g in self.got if g["path"] == path and g["status"] == 200]

    def stop(self):
        self.release.set()
        self.shutdown()
        self.server_close()


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Receiver

    def log_message(self, *args):
        pass

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        expected = "sha256=" + hmac.new(self.server.secret.encode(), raw, hashlib.sha256).hexdigest()
        if self.path == "/hang":
            self.server.holding.set()
            self.server.release.wait(30)
        status = self.server.answers.pop(0) if self.path == "/hook" and self.server.answers else 200
        self.server.got.append(
            {
                "path": self.path,
                "body": json.loads(raw),
                "signed": hmac.compare_digest(expected, self.headers.get("X-Deploycheck-Signature", "")),
                "content_type": self.headers.get("Content-Type"),
                "status": status,
                "at": time.monotonic(),
            }
        )
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def denied_receiver():
    """Listening on 127.0.0.2, which DEPLOYCHECK_CHECK_DENY_NETS refuses: it must hear nothing."""
    server = Receiver("127.0.0.2")
    yield server
    server.stop()


@pytest.fixture
def in_process(settings):
    """This process as the worker's operator configured it: run links, 127.0.0.2 denied."""
    settings.DEPLOYCHECK_BASE_URL = BASE
    settings.DEPLOYCHECK_CHECK_DENY_NETS = [*settings.DEPLOYCHECK_CHECK_DENY_NETS, "127.0.0.2/32"]
    settings.DEPLOYCHECK_OUTBOX_RETRY_SECONDS = 0.5
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    return settings


def deliver_due() -> list[str | None]:
    """What a worker does with every notification that is due: one attempt each."""
    due = OutboxMessage.objects.filter(subject__startswith="notify:", delivered_at__isnull=True, failed_at__isnull=True)
    return [outbox_deliver(pk) for pk in due.order_by("id").values_list("pk", flat=True)]


def add_webhook(client, url, project="shop", **body):
    return client.post(f"/api/v1/projects/{project}/webhooks", {"url": url, "format": "json", **body})


def start_run(actor, template, version="2.4.0", environment="production"):
    run, _ = services.run_start(
        version=template, environment=services.environment_get_or_create("shop", environment), version_label=version, actor=actor
    )
    return run


# --- Every event, to every kind of receiver -------------------------------------------------


@pytest.mark.django_db
def test_each_event_reaches_a_signed_json_webhook_a_slack_webhook_and_an_email(
    in_process, receiver, api_as, lead, client, small_template, django_user_model
):
    pipeline = api_as(lead)
    created = add_webhook(pipeline, receiver.url())
    assert created.status_code == 201, created.json_body
    receiver.secret = created.json_body["secret"]
    assert add_webhook(pipeline, receiver.url("/slack"), format="slack").status_code == 201
    client.force_login(lead)
    project = NotificationReceiver.objects.get(kind="json").project
    page = client.post(f"/projects/{project.pk}/notifications/new", {"kind": "email", "target": "ops@shop.test", "events": EVERY_EVENT})
    assert page.status_code == 302

    # A launch with everything that should reach someone: started, an item blocked, a check
    # failing, a sign-off approving it live; a second run rejected and aborted.
    run = start_run(lead, small_template)
    tag = run.items.get(text="Tag the release")
    services.run_item_set_state(item=tag, state="blocked", actor=lead, reason="the build is red")
    services.run_item_set_state(item=tag, state="done", actor=lead)  # nobody is told of a tick to done
    verdict(run.items.get(text="Health endpoint answers"), "failed", "answered 503")
    go_live(run)
    other = start_run(lead, small_template, version="2.4.1")
    signer = django_user_model.objects.get(username="gil")  # go_live gave gil every role
    services.signoff_record(run=other, actor=signer, decision="reject", role="Tech Lead", comment="not this one")
    services.run_set_status(run=other, status="aborted", reason="superseded", actor=lead)
    assert set(deliver_due()) == {"delivered"}

    hooks = [g for g in receiver.got if g["path"] == "/hook"]
    assert {h["body"]["event"] for h in hooks} == set(EVERY_EVENT)
    assert len(hooks) == len(EVERY_EVENT) + 2  # two runs started, two approvals (one per role)
    assert all(h["signed"] and h["content_type"] == "application/json" for h in hooks)
    for hook in hooks:
        body = hook["body"]
        assert set(body) <= {"event", "at", "run", "item", "detail"} and {"event", "at", "run", "detail"} <= set(body)
        assert set(body["run"]) == {"id", "html_url", "project", "environment", "version", "status"}
        assert body["run"]["html_url"] == f"{BASE}/runs/{body['run']['id']}/" and body["run"]["project"] == "shop"
    blocked = next(h["body"] for h in hooks if h["body"]["event"] == "item.blocked")
    assert blocked["item"] == {"id": tag.pk, "title": "Tag the release"} and blocked["detail"]["reason"] == "the build is red"
    failed = next(h["body"] for h in hooks if h["body"]["event"] == "verification.failed")
    assert failed["detail"]["status"] == "failed" and "503" in failed["detail"]["message"]
    assert next(h["body"] for h in hooks if h["body"]["event"] == "run.status")["detail"]["status"] == "aborted"

    slack = [g["body"] for g in receiver.got if g["path"] == "/slack"]
    assert len(slack) == len(hooks) and all(set(s) == {"text"} for s in slack)
    assert any(f"<{BASE}/runs/{run.pk}/|run #{run.pk}>" in s["text"] and "is live" in s["text"] for s in slack)

    assert len(mail.outbox) == len(hooks) and {m.to[0] for m in mail.outbox} == {"ops@shop.test"}
    live = next(m for m in mail.outbox if "is live" in m.subject)
    assert f"{BASE}/runs/{run.pk}/" in live.body and "2.4.0" in live.subject


@pytest.mark.django_db
def test_a_receiver_chooses_its_events_and_an_imported_past_run_notifies_nobody(in_process, receiver, api_as, lead, small_template):
    receiver.secret = add_webhook(api_as(lead), receiver.url(), events=["run.live"]).json_body["secret"]

    run = start_run(lead, small_template)
    services.run_item_set_state(item=run.items.get(text="Tag the release"), state="blocked", actor=lead, reason="red")
    assert OutboxMessage.objects.count() == 0
    go_live(run)
    deliver_due()

    assert receiver.events() == ["run.live"]


# --- Retries, and what the page shows -------------------------------------------------------


@pytest.mark.django_db
def test_a_failing_receiver_is_tried_again_with_growing_waits_and_the_page_shows_each_step(in_process, receiver, api_as, lead, client):
    receiver.secret = add_webhook(api_as(lead), receiver.url()).json_body["secret"]
    receiver.answers = [500, 500]
    webhook = NotificationReceiver.objects.get()
    client.force_login(lead)
    page = f"/projects/{webhook.project_id}/notifications"

    assert client.post(f"{page}/{webhook.pk}/test").status_code == 302  # "Send a test"
    [message] = OutboxMessage.objects.all()

    def attempt() -> tuple[str | None, float]:
        """One attempt; answers its state and how long after the attempt began the next one is due."""
        began = timezone.now()
        state = outbox_deliver(message.pk)
        message.refresh_from_db()
        return state, (message.next_attempt_at - began).total_seconds()

    state, first_wait = attempt()
    assert state == "pending" and "answered 500" in message.last_error
    assert 0.5 <= first_wait < 1.0
    shown = client.get(page).content.decode()
    assert 'data-status="pending"' in shown and "1 attempt so far" in shown and "answered 500" in shown
    if (message.next_attempt_at - timezone.now()).total_seconds() > 0.2:
        assert outbox_deliver(message.pk) is None  # not due yet: nothing is sent before the wait is over

    wait_until(lambda: timezone.now() >= message.next_attempt_at, timeout=5, interval=0.05)
    state, second_wait = attempt()
    assert state == "pending" and 1.0 <= second_wait < 1.5  # the wait doubles

    wait_until(lambda: timezone.now() >= message.next_attempt_at, timeout=5, interval=0.05)
    assert attempt()[0] == "delivered"
    assert [g["status"] for g in receiver.got] == [500, 500, 200] and all(g["signed"] for g in receiver.got if g["path"] == "/hook")
    assert receiver.got[-1]["body"]["event"] == "test" and receiver.got[-1]["body"]["run"] is None
    assert receiver.got[2]["at"] - receiver.got[1]["at"] > receiver.got[1]["at"] - receiver.got[0]["at"]
    shown = client.get(page).content.decode()
    assert 'data-status="delivered"' in shown and "attempt 3" in shown
    [listed] = api_as(lead).get("/api/v1/projects/shop/webhooks").json_body
    assert listed["last_delivery"]["status"] == "delivered" and listed["last_delivery"]["attempts"] == 3 and "secret" not in listed


# --- The deny rule --------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_webhook_aimed_at_a_denied_address_is_refused_never_sent_and_shown_as_such(in_process, denied_receiver, api_as, lead, client):
    pipeline = api_as(lead)
    assert add_webhook(pipeline, denied_receiver.url(), format="slack").status_code == 201
    webhook = NotificationReceiver.objects.get()
    client.force_login(lead)
    client.post(f"/projects/{webhook.project_id}/notifications/{webhook.pk}/test")

    assert deliver_due() == ["failed"]

    assert denied_receiver.got == []
    message = OutboxMessage.objects.get()
    assert message.attempts == 1 and message.last_error.startswith("refused: 127.0.0.2 is in a denied network")
    [listed] = pipeline.get("/api/v1/projects/shop/webhooks").json_body
    assert listed["last_delivery"]["status"] == "failed" and listed["last_delivery"]["error"].startswith("refused: ")
    shown = client.get(f"/projects/{webhook.project_id}/notifications").content.decode()
    assert 'data-status="failed"' in shown and "refused: 127.0.0.2 is in a denied network" in shown


# --- Leads manage receivers: the API ------------------------------------------------------


@pytest.mark.django_db
def test_leads_manage_webhooks_by_api_and_a_secret_is_shown_once(api_as, lead, member):
    pipeline = api_as(lead)

    generated = add_webhook(pipeline, "https://hooks.shop.test/deploycheck")
    chosen = add_webhook(pipeline, "https://hooks.shop.test/own", secret="our own secret", events=["run.live", "run.status"])
    slack = add_webhook(pipeline, "https://hooks.slack.test/services/T0/B0/x", format="slack", events=["run.live"])

    assert generated.status_code == 201 and len(generated.json_body["secret"]) >= 32
    assert generated.json_body["format"] == "json" and generated.json_body["events"] == EVERY_EVENT
    assert chosen.status_code == 201 and "secret" not in chosen.json_body and chosen.json_body["events"] == ["run.live", "run.status"]
    assert slack.status_code == 201 and "secret" not in slack.json_body
    stored = NotificationReceiver.objects.get(pk=chosen.json_body["id"])
    assert "our own secret" not in stored.secret_stored and stored.secret == "our own secret"  # encrypted at rest
    listed = pipeline.get("/api/v1/projects/shop/webhooks")
    assert listed.status_code == 200 and [w["id"] for w in listed.json_body] == [generated.json_body["id"], chosen.json_body["id"], slack.json_body["id"]]
    assert all("secret" not in w and w["last_delivery"] is None for w in listed.json_body)
    assert generated.json_body["secret"] not in listed.content.decode()

    refused = [
        add_webhook(pipeline, "ftp://files.shop.test/hook"),
        add_webhook(pipeline, "javascript:alert(1)"),
        add_webhook(pipeline, "https://hooks.shop.test/x", format="xml"),
        add_webhook(pipeline, "https://hooks.shop.test/x", events=["item.done"]),
        add_webhook(pipeline, "https://hooks.shop.test/x", events=[]),
        add_webhook(pipeline, "https://hooks.shop.test/x", format="slack", secret="slack takes none"),
        pipeline.post("/api/v1/projects/shop/webhooks", ["not", "an", "object"]),
        pipeline.post("/api/v1/projects/shop/webhooks", {"url": "https://hooks.shop.test/x"}),  # no format
        add_webhook(pipeline, "https://hooks.shop.test/x", project="p" * 101),
    ]
    assert [r.status_code for r in refused] == [400] * len(refused) and all(r.json_body["error"] for r in refused)
    assert NotificationReceiver.objects.count() == 3

    assert add_webhook(api_as(member), "https://hooks.shop.test/x").status_code == 403
    assert api_as(member).get("/api/v1/projects/shop/webhooks").status_code == 403
    assert pipeline.get("/api/v1/projects/nowhere/webhooks").status_code == 404
    assert pipeline.delete("/api/v1/projects/nowhere/webhooks/1").status_code == 404
    assert pipeline.delete(f"/api/v1/projects/shop/webhooks/{slack.json_body['id'] + 1000}").status_code == 404
    assert pipeline.delete(f"/api/v1/projects/shop/webhooks/{2**63}").status_code == 404
    gone = pipeline.delete(f"/api/v1/projects/shop/webhooks/{slack.json_body['id']}")
    assert gone.status_code == 200 and NotificationReceiver.objects.count() == 2


# --- The page -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_lead_reaches_notifications_from_environments_and_a_member_only_looks(in_process, client, lead, member, small_template, django_user_model):
    environment = services.environment_get_or_create("shop", "production")
    project = environment.project
    client.force_login(lead)

    listing = client.get("/environments/").content.decode()
    page = f"/projects/{project.pk}/notifications"
    assert f'href="{page}"' in listing
    assert "No receiver yet" in client.get(page).content.decode()

    added = client.post(f"{page}/new", {"kind": "json", "target": "https://hooks.shop.test/a", "events": ["run.live"]}, follow=True)
    shown = added.content.decode()
    secret = NotificationReceiver.objects.get().secret
    assert "shown this once" in shown and secret in shown
    assert secret not in client.get(page).content.decode()
    bad = client.post(f"{page}/new", {"kind": "email", "target": "<script>alert(1)</script>", "events": ["run.live"]}, follow=True).content.decode()
    assert "Give one email address" in bad and "<script>alert(1)" not in bad
    bad = client.post(f"{page}/new", {"kind": "slack", "target": "file:///etc/passwd", "events": ["run.live"]}, follow=True).content.decode()
    assert "starts with http:// or https://" in bad
    assert NotificationReceiver.objects.count() == 1

    client.force_login(member)
    looked = client.get(page).content.decode()
    assert "https://hooks.shop.test/a" in looked and "Send a test" not in looked and "Add a receiver" not in looked
    webhook = NotificationReceiver.objects.get()
    assert client.post(f"{page}/new", {"kind": "slack", "target": "https://hooks.shop.test/b"}).status_code == 403
    assert client.post(f"{page}/{webhook.pk}/test").status_code == 403
    assert client.post(f"{page}/{webhook.pk}/delete").status_code == 403
    assert OutboxMessage.objects.count() == 0

    admin = django_user_model.objects.create_superuser("root", "root@shop.test", "x")
    client.force_login(admin)
    listed = client.get("/admin/checklists/notificationreceiver/").content.decode()
    assert "https://hooks.shop.test/a" in listed and f'href="{page}"' in listed

    client.force_login(lead)
    assert client.post(f"{page}/{webhook.pk}/delete").status_code == 302
    assert NotificationReceiver.objects.count() == 0


# --- A real worker: a hanging receiver, and the broker going away ---------------------------


@pytest.mark.fault
@pytest.mark.django_db(transaction=True)
def test_a_hanging_receiver_and_a_down_broker_leave_ticks_fast_and_the_notifications_follow(
    own_worker, throwaway_redis, broker_at, receiver, denied_receiver, api_as, lead, small_template
):
    broker_at(throwaway_redis.url)
    own_worker.start(REDIS_URL=throwaway_redis.url, DEPLOYCHECK_OUTBOX_RETRY_SECONDS="0.3", DEPLOYCHECK_BASE_URL=BASE, DEPLOYCHECK_NOTIFY_TIMEOUT="25")
    pipeline = api_as(lead)
    receiver.secret = add_webhook(pipeline, receiver.url()).json_body["secret"]
    add_webhook(pipeline, receiver.url("/hang"), events=["run.start", "item.blocked"])
    add_webhook(pipeline, denied_receiver.url(), format="slack")  # the worker's world denies 127.0.0.2
    receiver.answers = [500]  # the first delivery fails: the worker tries again after its backoff

    try:
        started = pipeline.post("/api/v1/runs", {"template": "small-launch", "project": "shop", "environment": "production", "version": "2.4.0"})
        assert started.status_code == 201
        run_id = started.json_body["id"]
        assert wait_until(lambda: receiver.events() == ["run.start"] and receiver.holding.is_set(), timeout=20)
        assert [g["status"] for g in receiver.got if g["path"] == "/hook"] == [500, 200] and all(g["signed"] for g in receiver.got if g["path"] == "/hook")

        # The hanging receiver holds a worker thread; a tick answers all the same.
        items = {i["title"]: i["id"] for i in pipeline.get(f"/api/v1/runs/{run_id}").json_body["items"]}
        ticked = pipeline.post(f"/api/v1/runs/{run_id}/items/{items['Tag the release']}", {"state": "blocked", "note": "the build is red"})
        assert ticked.status_code == 200 and ticked.json_body["state"] == "blocked"
        assert not receiver.release.is_set()  # answered while the receiver is still hanging
        assert wait_until(lambda: receiver.events() == ["run.start", "item.blocked"], timeout=20)
        receiver.release.set()  # the hanging receiver answers at last: what it held is delivered
        hanging = OutboxMessage.objects.filter(target=receiver.url("/hang"))
        assert wait_until(lambda: [m.state for m in hanging.all()] == ["delivered", "delivered"], timeout=20)

        # The broker goes away: a tick still answers, its notification waits in the outbox.
        # (Only once no delivery is running: kombu's Redis transport, restoring unacknowledged
        # tasks on a lost connection, stops the worker with "Unrecoverable error ... hostname"
        # (celery/kombu#582); its supervisor restarts it, which this test does not stand in for.)
        throwaway_redis.stop()
        began = time.monotonic()
        ticked = pipeline.post(f"/api/v1/runs/{run_id}/items/{items['Deploy the build']}", {"state": "blocked", "note": "waiting for a window"})
        # Three receivers owe a message; the broker's refusal is paid once for all of them, and
        # fails fast (deploycheck.celery.publisher). A loose bound: the point is that it answers.
        assert ticked.status_code == 200 and time.monotonic() - began < 10
        waiting = OutboxMessage.objects.filter(target=receiver.url(), payload__body__item__id=items["Deploy the build"]).get()
        assert waiting.state == "pending" and waiting.attempts == 0

        throwaway_redis.start()  # back; the beat's next sweep publishes what waited

        assert wait_until(lambda: beat_sweeps_outbox(own_worker.queue), timeout=15)
        assert wait_until(lambda: receiver.events().count("item.blocked") == 2, timeout=30)
        assert all(g["signed"] for g in receiver.got if g["path"] == "/hook")
        denied = OutboxMessage.objects.filter(target=denied_receiver.url())
        assert wait_until(lambda: denied.count() == 3 and all(m.state == "failed" for m in denied.all()), timeout=15)
        assert all(m.last_error.startswith("refused: 127.0.0.2") and m.attempts == 1 for m in denied)
        assert denied_receiver.got == []
    finally:
        receiver.release.set()
