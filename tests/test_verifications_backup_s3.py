"""S3 backup checks use only credentials given on purpose: the check's access_key/secret_key
(from secret variables) or DEPLOYCHECK_S3_ACCESS_KEY_ID / DEPLOYCHECK_S3_SECRET_ACCESS_KEY.
Never AWS_* environment variables, ~/.aws or an instance role: a template author must not
borrow the server's own identity.

The S3 server is moto's, on 127.0.0.1, behind a middleware that records every request.
"""

import threading
from types import SimpleNamespace

import boto3
import pytest

from checklists.verifications.base import ParamError
from checklists.verifications.registry import run, validate

BUCKET = "creds-check-backups"
PARAMS = {"url": f"s3://{BUCKET}/daily/", "access_key": "{{ s3_key }}", "secret_key": "{{ s3_secret }}"}
VARIABLES = {"s3_key": "explicit-key", "s3_secret": "explicit-secret"}


@pytest.fixture(scope="module")
def s3_server():
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    app = DomainDispatcherApplication(create_backend_app)
    requests: list[dict] = []

    def recording(environ, start_response):
        requests.append({
            "method": environ["REQUEST_METHOD"],
            "path": environ.get("PATH_INFO", ""),
            "authorization": environ.get("HTTP_AUTHORIZATION", ""),
        })
        return app(environ, start_response)

    server = make_server("127.0.0.1", 0, recording, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    url = f"http://{host}:{port}"
    s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                      aws_access_key_id="setup-key", aws_secret_access_key="setup-secret")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="daily/db.sql.gz", Body=b"backup" * 10)
    yield SimpleNamespace(url=url, requests=requests)
    server.shutdown()
    thread.join()


@pytest.fixture
def s3(s3_server, settings, monkeypatch, tmp_path):
    """The checks' endpoint is the recording server; the process has AWS credentials of its
    own everywhere boto3 looks by default, and moto would accept them."""
    settings.DEPLOYCHECK_S3_ENDPOINT_URL = s3_server.url
    settings.DEPLOYCHECK_S3_ACCESS_KEY_ID = ""
    settings.DEPLOYCHECK_S3_SECRET_ACCESS_KEY = ""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ambient-env-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "ambient-env-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    shared = tmp_path / "aws-credentials"
    shared.write_text("[default]\naws_access_key_id = ambient-file-key\naws_secret_access_key = ambient-file-secret\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(shared))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # a regression must not reach 169.254.169.254
    s3_server.requests.clear()
    return s3_server


def credentials_used(requests) -> set[str]:
    return {r["authorization"].split("Credential=", 1)[1].split("/", 1)[0] for r in requests if "Credential=" in r["authorization"]}


def test_without_explicit_credentials_the_check_fails_and_sends_nothing(s3):
    outcome = run("backup", {"url": f"s3://{BUCKET}/daily/"}, {})

    assert outcome.status == "error"
    assert outcome.message == (
        "no S3 credentials: give access_key/secret_key (secret variables, e.g. secret_key={{ s3_secret }}) "
        "or set DEPLOYCHECK_S3_ACCESS_KEY_ID and DEPLOYCHECK_S3_SECRET_ACCESS_KEY"
    )
    assert s3.requests == []
    # ... although the server would have taken the ambient credentials (boto3's default chain):
    ambient = boto3.client("s3", endpoint_url=s3.url, region_name="us-east-1")
    assert ambient.list_objects_v2(Bucket=BUCKET, Prefix="daily/")["KeyCount"] == 1
    assert credentials_used(s3.requests) == {"ambient-env-key"}


def test_access_key_and_secret_key_from_secret_variables_pass(s3):
    outcome = run("backup", PARAMS, VARIABLES, secrets=[VARIABLES["s3_secret"]])

    assert outcome.status == "passed", outcome.message
    assert outcome.evidence["newest"] == "daily/db.sql.gz"
    assert s3.requests and credentials_used(s3.requests) == {"explicit-key"}


def test_credentials_from_settings_pass(s3, settings):
    settings.DEPLOYCHECK_S3_ACCESS_KEY_ID = "settings-key"
    settings.DEPLOYCHECK_S3_SECRET_ACCESS_KEY = "settings-secret"

    outcome = run("backup", {"url": f"s3://{BUCKET}/daily/"}, {})

    assert outcome.status == "passed", outcome.message
    assert credentials_used(s3.requests) == {"settings-key"}


def test_the_checks_own_credentials_win_over_the_settings(s3, settings):
    settings.DEPLOYCHECK_S3_ACCESS_KEY_ID = "settings-key"
    settings.DEPLOYCHECK_S3_SECRET_ACCESS_KEY = "settings-secret"

    outcome = run("backup", PARAMS, VARIABLES, secrets=[VARIABLES["s3_secret"]])

    assert outcome.status == "passed", outcome.message
    assert credentials_used(s3.requests) == {"explicit-key"}


def test_the_run_variables_of_the_first_version_still_work(s3):
    variables = {"aws_access_key_id": "variable-key", "aws_secret_access_key": "variable-secret", "aws_region": "us-east-1"}
    outcome = run("backup", {"url": f"s3://{BUCKET}/daily/"}, variables, secrets=["variable-secret"])
    assert outcome.status == "passed", outcome.message
    assert credentials_used(s3.requests) == {"variable-key"}


def test_a_secret_key_not_from_a_secret_variable_is_refused_before_any_request(s3):
    # Written into the checklist (or filled from a plain variable), it is stored and shown in clear.
    params = {"url": f"s3://{BUCKET}/daily/", "access_key": "explicit-key", "secret_key": "explicit-secret"}
    outcome = run("backup", params, {})
    assert outcome.status == "error"
    assert "secret_key must come from a secret variable" in outcome.message
    assert "explicit-secret" not in outcome.message
    assert s3.requests == []


def test_half_of_the_settings_is_a_clear_error(s3, settings):
    settings.DEPLOYCHECK_S3_ACCESS_KEY_ID = "settings-key"
    outcome = run("backup", {"url": f"s3://{BUCKET}/daily/"}, {})
    assert outcome.status == "error"
    assert outcome.message == "set DEPLOYCHECK_S3_ACCESS_KEY_ID and DEPLOYCHECK_S3_SECRET_ACCESS_KEY together"
    assert s3.requests == []


def test_aws_endpoint_and_profile_settings_in_the_environment_are_ignored(s3, monkeypatch):
    # A configured endpoint or an unknown profile would redirect or break boto3's default session.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    outcome = run("backup", PARAMS, VARIABLES, secrets=[VARIABLES["s3_secret"]])
    assert outcome.status == "passed", outcome.message
    assert credentials_used(s3.requests) == {"explicit-key"}


def test_the_secret_key_never_reaches_a_result(s3):
    params = {**PARAMS, "url": "s3://no-such-bucket-here/x"}
    outcome = run("backup", params, VARIABLES, secrets=[VARIABLES["s3_secret"]])
    assert outcome.status == "failed"
    assert "NoSuchBucket" in outcome.message
    assert "explicit-secret" not in repr(outcome)


@pytest.mark.parametrize(("params", "error"), [
    ({"url": "s3://backups/x", "access_key": "k"}, "give access_key and secret_key together"),
    ({"url": "s3://backups/x", "secret_key": "{{ s }}"}, "give access_key and secret_key together"),
    ({"url": "s3://backups/x", "session_token": "{{ t }}"}, "session_token: give it with access_key and secret_key"),
    ({"path": "/srv/backups/*", "access_key": "{{ k }}", "secret_key": "{{ s }}"}, "access_key, secret_key: only for url"),
    ({"url": "s3://backups/x", "region": "eu west 1"}, "region: 'eu west 1' is not an AWS region name"),
])
def test_credential_parameters_are_validated(params, error):
    with pytest.raises(ParamError, match=error):
        validate("backup", params)


def test_credential_parameters_with_placeholders_validate():
    clean = validate("backup", {**PARAMS, "session_token": "{{ s3_token }}", "region": "{{ s3_region }}"})
    assert clean["access_key"] == "{{ s3_key }}" and clean["region"] == "{{ s3_region }}"


def test_private_stops_an_s3_backup_check_at_a_loopback_endpoint_and_the_allow_list_lets_it_through(s3, settings):
    settings.DEPLOYCHECK_CHECK_DENY_NETS = ["private"]

    refused = run("backup", PARAMS, VARIABLES, secrets=[VARIABLES["s3_secret"]])
    sent_while_denied = len(s3.requests)
    settings.DEPLOYCHECK_CHECK_ALLOW_NETS = ["127.0.0.1/32"]
    allowed = run("backup", PARAMS, VARIABLES, secrets=[VARIABLES["s3_secret"]])

    assert refused.status == "error" and "denied network (private)" in refused.message, refused.message
    assert sent_while_denied == 0
    assert allowed.status == "passed", allowed.message
