"""The README's "Gate a release" examples, run as the tools would run them: the CI jobs' shell
script against the running app (the GitHub Actions job approved, the GitLab one aborted),
Flagger's exact confirm-promotion payload, and the Argo AnalysisTemplate's URL and conditions
read from the manifest and held against the gate's real answers."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from checklists import markdown as md
from checklists import services
from checklists.models import ApiToken, Run, VerificationResult

from .conftest import SMALL_CHECKLIST, wait_until
from .stories import go_live

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SHA = "3a1f5c9e0b7d4f26a8c1e9b05d7f3a2c6e4b8d10"


def example(name: str):
    return yaml.safe_load((EXAMPLES / name).read_text())


@pytest.fixture
def launch_template(db, lead):
    """The template the CI examples name (`web-service-launch`), here a short one."""
    return services.template_import(md.parse(SMALL_CHECKLIST), name="Web Service Launch", actor=lead)


def token_of(user) -> str:
    return ApiToken.issue(user, name="pipeline")[1]


def run_script(command: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        ["sh", "-c", command], cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "DEPLOYCHECK_INTERVAL": "0.2", **env},
    )


def finished(process: subprocess.Popen, timeout: float = 30) -> tuple[int, str]:
    output, _ = process.communicate(timeout=timeout)
    return process.returncode, output


def opened_run(version: str) -> Run:
    assert wait_until(lambda: Run.objects.filter(version_label=version).exists(), timeout=20)
    return Run.objects.get(version_label=version)


# --- The CI jobs ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_github_actions_job_opens_the_run_verifies_and_passes_once_it_goes_live(live_server, celery_worker, member, launch_template):
    [step] = [s for s in example("github-actions.yml")["jobs"]["checklist"]["steps"] if "gate-release.sh" in s.get("run", "")]
    expressions = {
        "vars.DEPLOYCHECK_URL": live_server.url,
        "secrets.DEPLOYCHECK_TOKEN": token_of(member),
        "github.event.repository.name": "shop",
        "github.ref_type == 'tag' && github.ref_name || github.sha": SHA,  # a push to main: the commit
        "github.run_id": "4711",
        "github.run_attempt": "1",
    }
    env = {name: re.sub(r"\$\{\{ (.+?) \}\}", lambda m: expressions[m.group(1)], str(value)) for name, value in step["env"].items()}

    script = run_script(step["run"], env)
    run = opened_run(SHA)
    assert (run.project.name, run.environment.name, run.template_name, run.started_by) == ("shop", "production", "Web Service Launch", member)
    # The job started the verifications; the worker ran them.
    assert wait_until(lambda: VerificationResult.objects.filter(run=run, finished_at__isnull=False).count() == 2)
    assert script.poll() is None  # still waiting for the sign-off

    go_live(run)

    status, output = finished(script)
    assert status == 0, output
    assert f"run {run.pk} for shop {SHA} → production: {live_server.url}/runs/{run.pk}/" in output
    assert "verifications started (2 checks)" in output and "approved, the run went live" in output


@pytest.mark.django_db(transaction=True)
def test_the_gitlab_job_fails_when_the_run_is_aborted(live_server, lead, launch_template):
    job = example("gitlab-ci.yml")["launch-checklist"]
    ci = {
        "CI_PROJECT_NAME": "shop",
        "CI_COMMIT_TAG": "v1.4.2",  # a tagged release: the tag names it
        "CI_COMMIT_SHA": SHA,
        "CI_PIPELINE_ID": "981",
        "CI_JOB_ID": "5521",
        "DEPLOYCHECK_URL": live_server.url,
        "DEPLOYCHECK_TOKEN": token_of(lead),
    }
    variables = {name: re.sub(r"\$(\w+)", lambda m: ci[m.group(1)], str(value)) for name, value in job["variables"].items()}

    script = run_script("\n".join(job["script"]), {**ci, **variables})
    run = opened_run("v1.4.2")
    services.run_set_status(run=run, status="aborted", reason="canary errors", actor=lead)

    status, output = finished(script)
    assert status == 1, output
    assert "rejected, the run was aborted or rolled back" in output


def test_the_ci_script_says_what_is_missing():
    status, output = finished(run_script("sh examples/gate-release.sh", {"DEPLOYCHECK_URL": "http://127.0.0.1:9"}))

    assert status == 2 and "DEPLOYCHECK_TOKEN is not set" in output


# --- Flagger ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_flaggers_confirm_promotion_webhook_promotes_only_a_release_that_went_live(client, make_user, lead, launch_template):
    canary = example("flagger-canary.yaml")
    [hook] = [h for h in canary["spec"]["analysis"]["webhooks"] if h["type"] == "confirm-promotion"]
    viewer = make_user("flagger", "viewer")
    metadata = {**hook["metadata"], "token": token_of(viewer)}
    assert hook["metadata"]["token"].startswith("dc_") and set(metadata) == {"project", "environment", "version", "token"}
    # Exactly what Flagger POSTs, and nothing else: no headers of its own.
    payload = {"name": canary["metadata"]["name"], "namespace": canary["metadata"]["namespace"], "phase": "WaitingPromotion", "metadata": metadata}

    def confirm() -> int:
        return client.post(urlsplit(hook["url"]).path, payload, content_type="application/json").status_code

    assert confirm() == 404  # no run of this version yet: hold
    environment = services.environment_get_or_create(metadata["project"], metadata["environment"])
    run, _ = services.run_start(version=launch_template, environment=environment, version_label=metadata["version"], actor=lead)
    assert confirm() == 409  # in progress: hold
    go_live(run)
    assert confirm() == 200  # went live: promote
    services.run_set_status(run=run, status="rolled_back", reason="errors after launch", actor=lead)
    assert confirm() == 403


# --- Argo Rollouts ------------------------------------------------------------------------------


def jsonpath(expression: str, document):
    """Kubernetes JSONPath of the `{$.a.b}` form, the one the template uses."""
    match = re.fullmatch(r"\{\$((?:\.\w+)+)\}", expression)
    assert match, f"unexpected jsonPath {expression}"
    for key in match.group(1).strip(".").split("."):
        document = document[key]
    return document


def holds(condition: str, result) -> bool:
    """Argo's expression for the `result == "word"` conditions the template uses."""
    match = re.fullmatch(r'result == "(\w+)"', condition)
    assert match, f"unexpected condition {condition}"
    return result == match.group(1)


@pytest.mark.django_db
def test_the_argo_analysis_template_reads_the_gate_and_judges_its_real_answers(client, make_user, lead, launch_template):
    template = example("argo-analysistemplate.yaml")
    [metric] = template["spec"]["metrics"]
    web = metric["provider"]["web"]
    assert web.get("method", "GET") == "GET" and "strict" not in web["url"]  # the web provider errs on non-2xx
    assert metric["interval"] and metric["count"] > metric["inconclusiveLimit"] and metric["failureLimit"] == 0
    token = token_of(make_user("argo", "viewer"))
    args = {a["name"]: a.get("value") for a in template["spec"]["args"]}
    args.update({"deploycheck-url": "http://testserver", "version": "2.0.0", "token": token})

    def fill(text: str) -> str:
        return re.sub(r"\{\{ ?args\.([\w-]+) ?\}\}", lambda m: args[m.group(1)], text)

    def measure() -> str:
        url = urlsplit(fill(web["url"]))
        headers = {h["key"]: fill(h["value"]) for h in web["headers"]}
        answer = client.get(f"{url.path}?{url.query}", headers=headers)
        assert answer.status_code == 200
        result = jsonpath(web["jsonPath"], answer.json())
        success, failure = holds(metric["successCondition"], result), holds(metric["failureCondition"], result)
        return "Successful" if success and not failure else "Failed" if failure else "Inconclusive"

    assert measure() == "Inconclusive"  # no run yet
    environment = services.environment_get_or_create(args["project"], args["environment"])
    run, _ = services.run_start(version=launch_template, environment=environment, version_label="2.0.0", actor=lead)
    assert measure() == "Inconclusive"  # pending
    go_live(run)
    assert measure() == "Successful"
    args["version"] = "2.0.1"
    aborted, _ = services.run_start(version=launch_template, environment=environment, version_label="2.0.1", actor=lead)
    services.run_set_status(run=aborted, status="aborted", reason="bad build", actor=lead)
    assert measure() == "Failed"
