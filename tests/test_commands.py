"""An operator works from the shell: import, export, grant, tokens."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from checklists.models import (
    ApiToken,
    ChecklistTemplate,
    Run,
    SignoffRole,
    TemplateItem,
)

from .conftest import CORPUS, SEEDS, ApiClient

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[1]


def run_command(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.mark.parametrize(
    "seed, items, roles",
    [
        ("dreamcatcher-production.md", 253, []),
        ("saas-chat-production.md", 301, []),
        ("llm-gateway-production.md", 204, ["Tech Lead", "DevOps Engineer", "Security Lead", "Product Manager"]),
    ],
)
def test_seed_checklists_import_with_their_counts(seed, items, roles):
    output = run_command("import_checklist", str(SEEDS / seed))

    template = ChecklistTemplate.objects.get()
    version = template.latest_version()
    assert f"template {template.pk} " in output
    assert f"{items} items" in output
    assert version.item_count == TemplateItem.objects.count() == items
    assert version.required_roles == roles


def test_import_with_suggested_checks_attaches_them_and_names_the_variables_they_need():
    plain = run_command("import_checklist", str(SEEDS / "dreamcatcher-production.md"), "--name", "plain")
    output = run_command("import_checklist", str(SEEDS / "dreamcatcher-production.md"), "--suggest-checks")

    assert "0 checks" in plain
    version = ChecklistTemplate.objects.exclude(name="plain").get().latest_version()
    assert version.check_count == 22
    assert "22 checks (22 suggested; they need host, backup_path, base_url, db_host, redis_host)" in output


@pytest.mark.parametrize("seed", ["dreamcatcher-production.md", "saas-chat-production.md", "llm-gateway-production.md"])
def test_export_then_import_gives_the_same_template_and_the_same_bytes(seed):
    run_command("import_checklist", str(SEEDS / seed))
    first = run_command("export_checklist", ChecklistTemplate.objects.get().slug)

    path = Path(ROOT / "var" / "test" / f"exported-{seed}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(first, encoding="utf-8")
    run_command("import_checklist", str(path))
    again = ChecklistTemplate.objects.order_by("-pk").first()
    second = run_command("export_checklist", str(again.pk))

    assert second == first
    v1, v2 = (t.latest_version() for t in ChecklistTemplate.objects.order_by("pk"))
    assert (v1.item_count, v1.section_count, v1.check_count, v1.required_roles) == (
        v2.item_count, v2.section_count, v2.check_count, v2.required_roles,
    )


def test_broken_emoji_are_repaired_on_import():
    run_command("import_checklist", str(SEEDS / "dreamcatcher-production.md"))

    exported = run_command("export_checklist", ChecklistTemplate.objects.get().slug)
    assert "Ã°Å¸" not in exported and "ðŸ" not in exported
    assert exported.rstrip().endswith("🚀")


def test_a_file_without_a_heading_takes_its_name_from_the_option_or_the_file(tmp_path):
    path = tmp_path / "quick-launch.md"
    path.write_text("- [ ] only item\n")

    run_command("import_checklist", str(path))
    run_command("import_checklist", str(path), "--name", "Named Launch")

    assert list(ChecklistTemplate.objects.order_by("pk").values_list("name", flat=True)) == ["quick-launch", "Named Launch"]


def test_a_filled_in_checklist_imports_as_a_past_run(make_user, tmp_path):
    make_user("root", "admin")
    path = tmp_path / "done.md"
    path.write_text("# Past\n\n- [x] a\n- [~] b\n- [!] c\n- [-] d\n- [ ] e\n")

    output = run_command("import_checklist", str(path), "--as-run", "--project", "shop", "--environment", "prod")

    run = Run.objects.get()
    assert output.startswith(f"run {run.pk}:")
    assert list(run.items.order_by("position").values_list("state", flat=True)) == ["done", "in_progress", "blocked", "skipped", "todo"]
    assert (run.project.name, run.environment.name) == ("shop", "prod")


def test_the_pov_tables_file_has_no_task_and_is_refused():
    with pytest.raises(CommandError, match="no task"):
        run_command("import_checklist", str(CORPUS / "pov-production-ready-tables.md"))
    assert ChecklistTemplate.objects.count() == 0


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "not a text file"),
        (b"# X\n\n- [ ] a <!-- check: tcp host=db port=99999 -->\n", "line 3"),
        (b"# X\n\n- [ ] a <!-- check: nope -->\n", "line 3"),
    ],
)
def test_bad_files_exit_1_with_a_one_line_error_and_save_nothing(tmp_path, content, expected):
    path = tmp_path / "bad.md"
    path.write_bytes(content)

    # The command in its own process, as an operator runs it, against the test database.
    env = {**os.environ, "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{connection.settings_dict['NAME']}"}
    finished = subprocess.run(
        [sys.executable, "manage.py", "import_checklist", str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env=env,
    )

    assert finished.returncode == 1
    error_lines = [line for line in finished.stderr.splitlines() if line.strip()]
    assert len(error_lines) == 1, finished.stderr
    assert expected in error_lines[0]
    assert ChecklistTemplate.objects.count() == 0


def test_a_missing_file_is_a_clear_error():
    with pytest.raises(CommandError, match="cannot read"):
        run_command("import_checklist", "/nonexistent/checklist.md")


def test_export_of_an_unknown_template_is_an_error():
    with pytest.raises(CommandError, match="no template"):
        run_command("export_checklist", "nothing-here")


def test_grant_creates_a_user_with_access_and_signoff_roles(monkeypatch):
    monkeypatch.setenv("DEPLOYCHECK_PASSWORD", "a long passphrase here")

    output = run_command("grant", "tess", "lead", "Tech Lead", "--create")

    from django.contrib.auth import get_user_model

    tess = get_user_model().objects.get(username="tess")
    assert tess.check_password("a long passphrase here")
    assert tess.has_perm("checklists.lead_run")
    assert SignoffRole.objects.get(name="Tech Lead").holders.filter(pk=tess.pk).exists()
    assert "lead" in output and "Tech Lead" in output


def test_grant_refuses_an_unknown_user_without_create():
    with pytest.raises(CommandError, match="--create"):
        run_command("grant", "ghost", "viewer")


def test_a_new_api_token_is_the_last_line_and_works(make_user):
    make_user("pipeline", "member")

    output = run_command("create_api_token", "pipeline")

    token = output.strip().splitlines()[-1]
    assert ApiToken.objects.get().key_hash == ApiToken.hash(token)
    assert token not in ApiToken.objects.values_list("key_hash", flat=True)[0]
    assert ApiClient(token).get("/api/v1/templates").status_code == 200


def test_starter_templates_load_once():
    run_command("load_starter_templates")
    run_command("load_starter_templates")

    template = ChecklistTemplate.objects.get()
    assert template.slug == "web-service-launch"
    assert template.latest_version().check_count >= 5


def test_export_run_prints_the_report_in_each_format(make_user, tmp_path):
    make_user("root", "admin")
    path = tmp_path / "done.md"
    path.write_text("# Past\n\n## Deploy\n\n- [x] migrate\n- [!] smoke test\n")
    run_command("import_checklist", str(path), "--as-run", "--project", "shop", "--environment", "prod", "--run-version", "3.1")
    run = Run.objects.get()

    markdown = run_command("export_run", str(run.pk))
    as_json = run_command("export_run", str(run.pk), "--format", "json")
    as_csv = run_command("export_run", str(run.pk), "--format", "csv")

    assert markdown.startswith("# Past: shop 3.1 → prod")
    assert "- [x] migrate" in markdown and "- [!] smoke test" in markdown
    import json

    assert [i["state"] for i in json.loads(as_json)["items"]] == ["done", "blocked"]
    assert len(as_csv.strip().splitlines()) == 3
    with pytest.raises(CommandError, match="no run"):
        run_command("export_run", "999999")
