"""An environment's variables belong to its leads; a run may only add to them, or change what a
lead marked per run, and the trail says which it did."""

import pytest

from checklists import markdown as md
from checklists import services
from checklists.models import AuditEvent, EnvironmentVariable, Run

from .servers import http_server  # noqa: F401

pytestmark = pytest.mark.django_db

CHECKLIST = """\
# Shop Launch

## Checks

- [ ] Health answers <!-- check: http url="{{ base_url }}/health" -->
- [ ] Canary answers <!-- check: http url="https://{{ canary_host }}/health" -->
- [ ] Admin answers <!-- check: http url="https://u:{{ token }}@{{ host }}/admin" -->
"""


@pytest.fixture
def template(lead):
    return services.template_import(md.parse(CHECKLIST), actor=lead)


@pytest.fixture
def production(lead, api_as):
    lead_api = api_as(lead)
    for name, body in {
        "base_url": {"value": "https://shop.example.test"},
        "host": {"value": "shop.example.test"},
        "token": {"value": "s3cr3t", "secret": True},
        "release_channel": {"value": "stable", "per_run": True},
    }.items():
        assert lead_api.put(f"/api/v1/environments/shop/production/variables/{name}", body).status_code == 200
    return services.environment_get("shop", "production")


def open_run(client, variables, **extra):
    body = {"template": "shop-launch", "project": "shop", "environment": "production", "version": "1.0", "variables": variables, **extra}
    return client.post("/api/v1/runs", body)


def test_a_member_cannot_point_a_leads_base_url_at_another_host(api_as, member, template, production):
    answer = open_run(api_as(member), {"base_url": "https://attacker.test"})

    assert answer.status_code == 400
    assert "base_url is set by a lead" in answer.json_body["error"]
    assert not Run.objects.exists()


def test_a_run_gives_its_own_value_for_a_per_run_variable_and_adds_what_the_environment_lacks(api_as, member, template, production):
    answer = open_run(api_as(member), {"release_channel": "canary", "canary_host": "canary.shop.test"})

    assert answer.status_code == 201
    run = Run.objects.get()
    assert run.variables_dict() == {
        "base_url": "https://shop.example.test",
        "host": "shop.example.test",
        "token": "s3cr3t",
        "release_channel": "canary",
        "canary_host": "canary.shop.test",
    }


def test_the_start_event_records_which_variables_the_run_set(api_as, member, template, production):
    open_run(api_as(member), {"release_channel": "canary", "canary_host": "canary.shop.test", "deploy_key": {"value": "k3y", "secret": True}})

    start = AuditEvent.objects.get(action="run.start")

    assert start.after["variables"] == {
        "set": ["canary_host", "deploy_key"],
        "overridden": ["release_channel"],
        "values": {"canary_host": "canary.shop.test", "release_channel": "canary"},
    }


def test_the_environment_api_shows_variables_without_secrets(api_as, member, production):
    answer = api_as(member).get("/api/v1/environments/shop/production")

    assert answer.status_code == 200
    assert answer.json_body == {
        "project": "shop",
        "environment": "production",
        "variables": [
            {"name": "base_url", "value": "https://shop.example.test", "secret": False, "per_run": False},
            {"name": "host", "value": "shop.example.test", "secret": False, "per_run": False},
            {"name": "release_channel", "value": "stable", "secret": False, "per_run": True},
            {"name": "token", "value": None, "secret": True, "per_run": False},
        ],
    }
    assert [e["environment"] for e in api_as(member).get("/api/v1/environments").json_body] == ["production"]


def test_only_leads_write_variables_and_values_are_capped(api_as, member, lead, production):
    member_put = api_as(member).put("/api/v1/environments/shop/production/variables/base_url", {"value": "https://elsewhere.test"})
    too_big = api_as(lead).put("/api/v1/environments/shop/production/variables/blob", {"value": "x" * 9000})
    deleted = api_as(lead).delete("/api/v1/environments/shop/production/variables/host")
    missing = api_as(lead).get("/api/v1/environments/shop/staging")

    assert member_put.status_code == 403
    assert too_big.status_code == 400 and "at most 8192" in too_big.json_body["error"]
    assert deleted.status_code == 200
    assert missing.status_code == 404
    assert sorted(EnvironmentVariable.objects.values_list("name", flat=True)) == ["base_url", "release_channel", "token"]


def test_the_start_page_shows_the_leads_values_read_only_and_asks_only_for_the_rest(client, member, template, production):
    client.force_login(member)

    page = client.get("/runs/new", {"version": template.pk, "project": "shop", "environment": "production"}).content.decode()

    assert "https://shop.example.test" in page and "s3cr3t" not in page
    assert 'name="var_name" value="base_url"' not in page
    assert 'name="var_name" value="release_channel"' in page
    assert 'name="var_name" value="canary_host"' in page
    assert 'name="var_name" value="token"' not in page


def test_a_secret_saved_under_an_old_secret_key_fails_its_check_instead_of_running_empty(settings, lead, member, http_server):  # noqa: F811
    from checklists.models import VerificationResult

    hits = []
    http_server.routes["/admin"] = lambda h: (hits.append(h.path), h.reply(200, "ok"))
    text = f'# Keys\n\n## Checks\n\n- [ ] Admin answers <!-- check: http url="{http_server.url("/admin")}?t={{{{ token }}}}" -->\n'
    version = services.template_import(md.parse(text), actor=lead)
    environment = services.environment_get_or_create("keys", "production")
    services.environment_variable_set(environment=environment, name="token", value="s3cr3t", secret=True)
    run, _ = services.run_start(version=version, environment=environment, version_label="1", actor=member)
    settings.SECRET_KEY = "a-new-key-and-the-old-one-forgotten"  # rotated without SECRET_KEY_FALLBACKS

    [result] = services.verification_request(run=run, actor=member)
    services.verification_execute(services.verification_claim([result.pk]))

    result = VerificationResult.objects.get(pk=result.pk)
    assert result.status == "error"
    assert result.message.startswith("secret unreadable: enter token again")
    assert hits == []


def test_the_template_page_names_the_variables_its_checks_need(client, member, template):
    client.force_login(member)

    page = client.get(template.template.get_absolute_url()).content.decode()

    assert "Its checks fill in: <code>base_url</code>, <code>canary_host</code>, <code>token</code>, <code>host</code>" in page


def test_the_start_page_says_what_is_still_missing_and_starting_anyway_works(client, member, template, production):
    client.force_login(member)
    query = {"version": template.pk, "project": "shop", "environment": "production"}

    page = client.get("/runs/new", query).content.decode()
    started = client.post("/runs/new", {**query, "version_label": "1.1", "confirm": "1", "var_name": ["release_channel", "canary_host"], "var_value": ["stable", ""]})

    assert "Still missing for this environment: <code>canary_host</code>" in page
    assert started.status_code == 302
    assert "canary_host" not in Run.objects.get().variables_dict()


def test_a_missing_contract_variable_comes_with_an_example_of_its_value(client, member, template):
    client.force_login(member)

    page = client.get("/runs/new", {"version": template.pk, "project": "new-shop", "environment": "staging"}).content.decode()

    assert 'aria-label="host" placeholder="e.g. app.example.com, or app.example.com:8443"' in page
    assert 'aria-label="canary_host">' in page  # not one of the contract's: no example to give
