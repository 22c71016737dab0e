"""A pipeline or a lead manages templates through the API."""

import pytest

from checklists.models import ChecklistTemplate, TemplateItem, TemplateVersion

from .conftest import SEEDS, SMALL_CHECKLIST

pytestmark = pytest.mark.django_db


def test_lead_imports_a_checklist_and_gets_its_counts(api_as, lead):
    answer = api_as(lead).post("/api/v1/templates/import", {"markdown": SMALL_CHECKLIST})

    assert answer.status_code == 201
    body = answer.json_body
    assert body["name"] == "Small Launch"
    assert body["slug"] == "small-launch"
    assert body["version"] == 1
    assert (body["item_count"], body["section_count"], body["check_count"]) == (6, 4, 2)


def test_importing_the_same_name_twice_makes_a_second_template_with_a_numbered_slug(api_as, lead):
    client = api_as(lead)
    first = client.post("/api/v1/templates/import", {"markdown": SMALL_CHECKLIST}).json_body
    second = client.post("/api/v1/templates/import", {"markdown": SMALL_CHECKLIST}).json_body

    assert (first["slug"], second["slug"]) == ("small-launch", "small-launch-2")
    assert first["id"] != second["id"]


def test_seed_checklist_imports_with_its_roles(api_as, lead):
    text = (SEEDS / "llm-gateway-production.md").read_text(encoding="utf-8")
    body = api_as(lead).post("/api/v1/templates/import", {"markdown": text}).json_body

    assert body["item_count"] == 204
    version = TemplateVersion.objects.get(template_id=body["id"])
    assert version.required_roles == ["Tech Lead", "DevOps Engineer", "Security Lead", "Product Manager"]


@pytest.mark.parametrize(
    "markdown, line, words",
    [
        ("# X\n\n## S\n\n- [ ] ok\n- [ ] bad <!-- check: http url=\"unterminated -->\n", 6, "quote"),
        ("# X\n\n- [ ] a\n- [ ] b <!-- check: ftp host=x -->\n", 4, "unknown check kind"),
        ("# X\n\n- [ ] a <!-- check: tcp host=db port=99999 -->\n", 3, "port"),
        ("# X\n\n- [ ] a <!-- check: http url=file:///etc/passwd -->\n", 3, "http"),
    ],
)
def test_a_broken_checklist_is_refused_with_its_line_and_nothing_is_saved(api_as, lead, markdown, line, words):
    answer = api_as(lead).post("/api/v1/templates/import", {"markdown": markdown})

    assert answer.status_code == 400
    assert answer.json_body["line"] == line
    assert words in answer.json_body["error"].lower()
    assert ChecklistTemplate.objects.count() == 0
    assert TemplateItem.objects.count() == 0


def test_an_empty_or_taskless_file_is_refused(api_as, lead):
    client = api_as(lead)
    empty = client.post("/api/v1/templates/import", {"markdown": "   \n"})
    taskless = client.post("/api/v1/templates/import", {"markdown": "# Notes\n\nJust prose.\n"})

    assert empty.status_code == taskless.status_code == 400
    assert "empty" in empty.json_body["error"]
    assert "no task" in taskless.json_body["error"]
    assert ChecklistTemplate.objects.count() == 0


def test_a_request_without_markdown_is_a_400_with_error(api_as, lead):
    answer = api_as(lead).post("/api/v1/templates/import", {"name": "nothing"})

    assert answer.status_code == 400
    assert "markdown" in answer.json_body["error"]


def test_member_cannot_import_templates(api_as, member):
    answer = api_as(member).post("/api/v1/templates/import", {"markdown": SMALL_CHECKLIST})

    assert answer.status_code == 403
    assert ChecklistTemplate.objects.count() == 0


def test_no_token_no_access(anonymous_api):
    answer = anonymous_api.get("/api/v1/templates")

    assert answer.status_code == 401
    assert "Bearer" in answer.json_body["error"]


def test_a_wrong_token_is_refused(db):
    from .conftest import ApiClient

    assert ApiClient("dc_not-a-real-token").get("/api/v1/templates").status_code == 401


def test_templates_are_listed_and_exported_as_markdown_that_imports_the_same(api_as, lead, small_template):
    client = api_as(lead)
    listed = client.get("/api/v1/templates").json_body
    assert [t["slug"] for t in listed] == ["small-launch"]

    exported = client.get(f"/api/v1/templates/{small_template.template_id}/export")
    assert exported.status_code == 200
    assert exported["Content-Type"].startswith("text/markdown")
    text = exported.content.decode()
    assert "- [ ] Health endpoint answers <!-- check: http" in text
    assert "<!-- after-go-live -->" in text

    again = client.post("/api/v1/templates/import", {"markdown": text}).json_body
    assert (again["item_count"], again["section_count"], again["check_count"]) == (6, 4, 2)
    by_slug = client.get(f"/api/v1/templates/{again['slug']}/export").content.decode()
    assert by_slug == text


def test_the_openapi_schema_is_published(anonymous_api):
    answer = anonymous_api.get("/api/schema")

    assert answer.status_code == 200
    assert "/api/v1/runs" in answer.json_body["paths"]


def test_pasted_markdown_with_broken_emoji_is_repaired(api_as, lead):
    broken = "# Launch ðŸš€\n\n- [ ] Deploy âœ…\n"

    body = api_as(lead).post("/api/v1/templates/import", {"markdown": broken}).json_body

    assert body["name"] == "Launch 🚀"
    exported = api_as(lead).get(f"/api/v1/templates/{body['id']}/export").content.decode()
    assert "- [ ] Deploy ✅" in exported


def test_an_import_names_the_variables_its_checks_use(api_as, lead):
    body = api_as(lead).post("/api/v1/templates/import", {"markdown": SMALL_CHECKLIST}).json_body

    assert body["suggested"] == 0
    assert body["variables"] == ["base_url"]


@pytest.mark.parametrize("seed", sorted(p.name for p in SEEDS.glob("*.md")))
def test_a_seed_imported_with_suggested_checks_carries_them(api_as, lead, seed):
    markdown = (SEEDS / seed).read_text(encoding="utf-8")
    plain = api_as(lead).post("/api/v1/templates/import", {"markdown": markdown}).json_body
    suggested = api_as(lead).post("/api/v1/templates/import", {"markdown": markdown, "suggest_checks": True}).json_body

    assert suggested["suggested"] > 0
    assert suggested["check_count"] == plain["check_count"] + suggested["suggested"]
    assert TemplateItem.objects.filter(version__template_id=suggested["id"]).exclude(check_kind="").count() == suggested["check_count"]
    # The contract's variables only, so one environment serves every imported checklist.
    assert set(suggested["variables"]) <= {"base_url", "host", "redis_host", "db_host", "backup_path", "backup_url"}
