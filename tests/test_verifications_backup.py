"""backup checks: files under DEPLOYCHECK_BACKUP_ROOTS, and objects in a real (moto) S3 server."""

import datetime as dt
import ipaddress
import os
import time

import boto3
import pytest

from checklists.verifications.base import ParamError
from checklists.verifications.registry import run, validate
from tests.servers import backdate_s3_object, dns_server, http_server, moto_server  # noqa: F401

HOUR = 3600
CREDS = {"aws_access_key_id": "testing-key", "aws_secret_access_key": "testing-secret", "aws_region": "us-east-1"}


@pytest.fixture
def backups(tmp_path, settings):
    root = tmp_path / "backups"
    root.mkdir()
    settings.DEPLOYCHECK_BACKUP_ROOTS = [os.path.realpath(root)]

    def write(name: str, size: int, hours_old: float):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)
        when = time.time() - hours_old * HOUR
        os.utime(path, (when, when))
        return path

    write.root = root
    return write


def test_fresh_backup_passes(backups):
    backups("db-old.sql.gz", 100, hours_old=50)
    backups("db-new.sql.gz", 100, hours_old=2)
    outcome = run("backup", {"path": f"{backups.root}/db-*.sql.gz"}, {})
    assert outcome.status == "passed", outcome.message
    assert outcome.evidence["newest"].endswith("db-new.sql.gz")
    assert 1.9 < outcome.evidence["age_hours"] < 2.1
    assert outcome.evidence["size"] == 100


def test_stale_backup_fails_with_its_age(backups):
    backups("db-1.sql.gz", 100, hours_old=49)
    outcome = run("backup", {"path": f"{backups.root}/db-*.sql.gz"}, {})
    assert outcome.status == "failed"
    assert "is 49.0 hours old, more than max_age_hours 26" in outcome.message


def test_empty_newest_backup_fails_min_bytes(backups):
    backups("db-1.sql.gz", 100, hours_old=10)
    backups("db-2.sql.gz", 0, hours_old=1)
    outcome = run("backup", {"path": f"{backups.root}/db-*.sql.gz"}, {})
    assert outcome.status == "failed"
    assert "db-2.sql.gz is 0 bytes, fewer than min_bytes 1" in outcome.message


def test_no_match_fails_clearly(backups):
    outcome = run("backup", {"path": f"{backups.root}/nothing-*.gz"}, {})
    assert outcome.status == "failed"
    assert outcome.message == f"nothing matches {backups.root}/nothing-*.gz"


def test_path_outside_the_roots_is_refused_before_looking(backups, tmp_path):
    secret = tmp_path / "elsewhere" / "passwords.txt"
    secret.parent.mkdir()
    secret.write_text("x")
    outcome = run("backup", {"path": f"{secret.parent}/*.txt"}, {})
    assert outcome.status == "error"
    assert "is outside DEPLOYCHECK_BACKUP_ROOTS" in outcome.message
    assert "passwords" not in repr(outcome.evidence)


def test_symlink_out_of_the_roots_is_ignored(backups, tmp_path):
    outside = tmp_path / "outside.sql.gz"
    outside.write_bytes(b"x" * 10)
    os.symlink(outside, backups.root / "db-link.sql.gz")
    outcome = run("backup", {"path": f"{backups.root}/db-*.sql.gz"}, {})
    assert outcome.status == "failed"
    assert "nothing matches" in outcome.message


def test_any_path_is_refused_when_no_roots_are_configured(settings, tmp_path):
    settings.DEPLOYCHECK_BACKUP_ROOTS = []
    outcome = run("backup", {"path": f"{tmp_path}/*"}, {})
    assert outcome.status == "error"
    assert "no DEPLOYCHECK_BACKUP_ROOTS are configured" in outcome.message


def test_parent_directory_steps_are_refused_at_validation():
    with pytest.raises(ParamError, match="path: '..' is not allowed"):
        validate("backup", {"path": "/srv/backups/../../etc/*"})


# --- S3 -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bucket(moto_server):  # noqa: F811
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1",
                      aws_access_key_id="testing-key", aws_secret_access_key="testing-secret")
    s3.create_bucket(Bucket="nightly")
    now = dt.datetime.now(dt.timezone.utc)
    s3.put_object(Bucket="nightly", Key="web/2024-01-01.tar.gz", Body=b"old" * 10)
    s3.put_object(Bucket="nightly", Key="web/today.tar.gz", Body=b"new" * 10)
    s3.put_object(Bucket="nightly", Key="db/dump.sql.gz", Body=b"dump" * 10)
    backdate_s3_object("nightly", "web/2024-01-01.tar.gz", now - dt.timedelta(days=10))
    backdate_s3_object("nightly", "db/dump.sql.gz", now - dt.timedelta(hours=72))
    return moto_server


@pytest.fixture
def s3_endpoint(bucket, settings):
    settings.DEPLOYCHECK_S3_ENDPOINT_URL = bucket
    return bucket


def test_fresh_s3_backup_passes_and_names_the_newest_object(s3_endpoint):
    outcome = run("backup", {"url": "s3://nightly/web/"}, CREDS, secrets=[CREDS["aws_secret_access_key"]])
    assert outcome.status == "passed", outcome.message
    assert outcome.evidence["newest"] == "web/today.tar.gz"
    assert outcome.evidence["size"] == 30
    assert outcome.evidence["age_hours"] < 1


def test_stale_s3_backup_fails(s3_endpoint):
    outcome = run("backup", {"url": "s3://nightly/db/"}, CREDS)
    assert outcome.status == "failed"
    assert "db/dump.sql.gz is 72.0 hours old, more than max_age_hours 26" in outcome.message


def test_missing_bucket_fails_with_the_s3_error(s3_endpoint):
    outcome = run("backup", {"url": "s3://no-such-bucket/x"}, CREDS)
    assert outcome.status == "failed"
    assert "NoSuchBucket" in outcome.message


def test_s3_endpoint_in_a_denied_network_is_refused(s3_endpoint, settings):
    settings.DEPLOYCHECK_CHECK_DENY_NETS = [*settings.DEPLOYCHECK_CHECK_DENY_NETS, ipaddress.ip_network("127.0.0.0/8")]
    outcome = run("backup", {"url": "s3://nightly/web/"}, CREDS)
    assert outcome.status == "error"
    assert "127.0.0.1 is in a denied network (127.0.0.0/8)" in outcome.message


def test_s3_requests_are_resolved_and_sent_by_the_guarded_helper(bucket, settings, dns_server, monkeypatch):  # noqa: F811
    # storage.test exists only in the local DNS server the checks are pointed at; botocore's
    # own connection would ask the system resolver and fail, so passing proves the request
    # went out through the helper that applies the deny list.
    import moto.settings

    # moto would otherwise read "storage" in the Host header as a bucket name.
    monkeypatch.setattr(moto.settings, "S3_IGNORE_SUBDOMAIN_BUCKETNAME", True)
    server = dns_server({("storage.test", "A"): ["127.0.0.1"]})
    settings.DEPLOYCHECK_CHECK_NAMESERVERS = [server.address]
    settings.DEPLOYCHECK_S3_ENDPOINT_URL = bucket.replace("127.0.0.1", "storage.test")
    outcome = run("backup", {"url": "s3://nightly/web/"}, CREDS)
    assert outcome.status == "passed", outcome.message
    assert ("storage.test", "A") in server.queries


def test_without_credential_variables_no_metadata_credentials_are_fetched(s3_endpoint, monkeypatch, tmp_path, http_server):  # noqa: F811
    # boto3 would fetch credentials from the container endpoint (169.254.170.2 in real life,
    # a local server here) outside the guarded helper; the check must say what is missing.
    http_server.route("/creds", 200, '{"AccessKeyId": "a", "SecretAccessKey": "b", "Token": "c", "Expiration": "2999-01-01T00:00:00Z"}')
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # a regression must not reach 169.254.169.254
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", http_server.url("/creds"))
    outcome = run("backup", {"url": "s3://nightly/web/"}, {})
    assert outcome.status == "error"
    assert outcome.message.startswith("no S3 credentials: give access_key/secret_key")
    assert http_server.seen == []


# --- the walk: glob's matches, within the roots and the deadline ----------------------------


def _tree(root, width: int, depth: int) -> int:
    """width**depth leaf directories (and the ones above them) with no backup in any."""
    made = 0
    level = [root]
    for _ in range(depth):
        nxt = []
        for parent in level:
            for i in range(width):
                child = parent / f"d{i}"
                child.mkdir()
                (child / "notes.txt").write_text("x")
                nxt.append(child)
                made += 1
        level = nxt
    return made


def test_a_double_star_glob_with_no_match_ends_at_the_timeout_not_after_the_whole_tree(backups, settings, monkeypatch):
    directories = _tree(backups.root, width=8, depth=3)  # 584 directories
    pattern = f"{backups.root}/**/db-*.sql.gz"
    settings.DEPLOYCHECK_CHECK_TIMEOUT = 0.3
    # A slow disk: every directory takes 5 ms to list, so the whole tree would take ~3 s.
    real_scandir = os.scandir

    def slow_scandir(path="."):
        if str(path).startswith(str(backups.root)):
            time.sleep(0.005)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", slow_scandir)
    started = time.monotonic()
    outcome = run("backup", {"path": pattern}, {})
    took = time.monotonic() - started

    assert outcome.status == "failed", outcome.message
    assert outcome.message.startswith(f"searching {pattern} did not finish within 0.3 s (")
    assert "narrow the glob or raise DEPLOYCHECK_CHECK_TIMEOUT" in outcome.message
    assert 0 < outcome.evidence["directories"] < directories / 2
    assert took < 1.5


def test_a_double_star_glob_over_a_tree_without_a_match_finishes_within_a_normal_timeout(backups):
    _tree(backups.root, width=6, depth=3)
    outcome = run("backup", {"path": f"{backups.root}/**/db-*.sql.gz"}, {})
    assert outcome.status == "failed"
    assert outcome.message == f"nothing matches {backups.root}/**/db-*.sql.gz"


def test_a_double_star_glob_finds_the_newest_backup_deep_down(backups):
    backups("web/2024/01/db-1.sql.gz", 10, hours_old=30)
    backups("web/2024/02/db-2.sql.gz", 10, hours_old=3)
    backups("db-0.sql.gz", 10, hours_old=40)
    outcome = run("backup", {"path": f"{backups.root}/**/db-*.sql.gz"}, {})
    assert outcome.status == "passed", outcome.message
    assert outcome.evidence["newest"] == f"{backups.root}/web/2024/02/db-2.sql.gz"


@pytest.mark.parametrize("pattern", [
    "**/*.gz", "**", "*/db-*.gz", "daily/**/db-?.gz", ".hidden/*.gz", "**/.*.gz", "[dw]*/**/*.gz",
    "daily/*/*", "daily//db-1.gz", "weekly/db-[0-9].gz", "*", "daily/**/**/x/*.gz",
])
def test_the_walk_matches_the_same_files_as_glob(backups, pattern):
    import glob

    from checklists.verifications import backup, net

    for name in ("daily/db-1.gz", "daily/a/db-2.gz", "daily/a/b/x/db-3.gz", "daily/.old/db-4.gz",
                 "daily/.db-5.gz", "weekly/db-6.gz", "weekly/db-x.gz", ".hidden/db-7.gz", "top.gz"):
        backups(name, 1, hours_old=1)
    full = f"{backups.root}/{pattern}"
    expected = {os.path.normpath(p) for p in glob.glob(full, recursive=True) if os.path.isfile(p)}
    walk = backup._Walk([str(backups.root)], net.Deadline(10))
    found = {os.path.normpath(p) for p in walk.matches(full) if os.path.isfile(p)}
    assert found == expected


def test_the_walk_does_not_follow_a_directory_symlink_out_of_the_roots(backups, tmp_path):
    from checklists.verifications import backup, net

    outside = tmp_path / "outside"
    (outside / "deeper").mkdir(parents=True)
    (outside / "deeper" / "db-1.sql.gz").write_bytes(b"x" * 10)
    os.symlink(outside, backups.root / "elsewhere")
    walk = backup._Walk([str(backups.root)], net.Deadline(10))
    assert list(walk.matches(f"{backups.root}/**/*.gz")) == []
    assert walk.directories == 1  # the root only: nothing outside was listed
    outcome = run("backup", {"path": f"{backups.root}/**/*.gz"}, {})
    assert outcome.status == "failed" and "nothing matches" in outcome.message


def test_a_symlink_loop_under_double_star_is_walked_once(backups):
    backups("a/db-1.sql.gz", 10, hours_old=1)
    os.symlink(backups.root / "a", backups.root / "a" / "loop")
    os.symlink(backups.root, backups.root / "a" / "up")
    outcome = run("backup", {"path": f"{backups.root}/**/db-*.sql.gz"}, {})
    assert outcome.status == "passed", outcome.message
    assert outcome.duration_ms < 2000
