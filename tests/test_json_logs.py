"""An operator searches the logs: every line is one JSON object, and a request's lines and a
check's lines say which request, user and run they belong to."""

from __future__ import annotations

import io
import json
import logging

import pytest

from checklists.models import VerificationResult

from .conftest import wait_until


@pytest.fixture
def web_log():
    """The configured console handler of this process, written to a buffer for the test."""
    handler = next(h for h in logging.getLogger().handlers if type(h.formatter).__name__ == "JsonFormatter")
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)


def lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.django_db
def test_a_request_logs_one_json_line_with_its_id_user_and_run(client, run, member, web_log):
    client.force_login(member)

    answer = client.get(run.get_absolute_url(), headers={"X-Request-ID": "launch-0042-abcdef"})

    assert answer["X-Request-ID"] == "launch-0042-abcdef"
    [line] = [entry for entry in lines(web_log.getvalue()) if entry["logger"] == "deploycheck.request"]
    assert line["request_id"] == "launch-0042-abcdef"
    assert line["user"] == member.username
    assert line["run"] == run.pk
    assert line["status"] == 200 and line["method"] == "GET" and line["path"] == run.get_absolute_url()
    assert line["level"] == "INFO" and line["time"].endswith("+00:00")


@pytest.mark.django_db
def test_a_request_id_that_is_not_sane_is_replaced(client, web_log):
    answer = client.get("/healthz", headers={"X-Request-ID": "<script>\nforged"})

    assert answer["X-Request-ID"] != "<script>\nforged"
    assert len(answer["X-Request-ID"]) == 32
    assert all(entry["request_id"] == answer["X-Request-ID"] for entry in lines(web_log.getvalue()))


@pytest.mark.django_db(transaction=True)
def test_the_worker_logs_json_lines_naming_the_run_and_the_task(celery_worker, run, member, api_as):
    answer = api_as(member).post(f"/api/v1/runs/{run.pk}/verify", {})
    assert answer.status_code == 202
    assert wait_until(lambda: VerificationResult.objects.filter(run=run, applied_at__isnull=False).count() == answer.json_body["queued"], timeout=30)

    def check_lines():
        found = []
        for text in celery_worker.log_path.read_text().splitlines():
            if text.startswith("{"):
                entry = json.loads(text)
                if entry.get("run") == run.pk and entry["logger"] == "checklists.services.verifications":
                    found.append(entry)
        return found

    found = wait_until(check_lines, timeout=10)
    assert len(found) == answer.json_body["queued"]
    assert {entry["task"] for entry in found} == {"checklists.tasks.verification_run"}
    assert all(entry["task_id"] and entry["status"] in ("passed", "failed", "error") for entry in found)


@pytest.mark.django_db
def test_a_nonsense_run_id_in_the_path_is_logged_without_a_run(client, member, web_log):
    client.force_login(member)

    answer = client.get("/api/v1/runs/null,null")

    assert answer.status_code in (401, 404, 422)
    entries = lines(web_log.getvalue())
    request_line = next(e for e in entries if e["logger"] == "deploycheck.request")
    assert "run" not in request_line
    # Django's own line about the refusal carries the same request id.
    refusal = next(e for e in entries if e["logger"] == "django.request")
    assert refusal["request_id"] == request_line["request_id"] == answer["X-Request-ID"]
