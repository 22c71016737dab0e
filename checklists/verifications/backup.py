"""`backup`: the newest file under a glob, or object under an S3 prefix, is recent and not empty."""

from __future__ import annotations

import datetime as dt
import glob
import os
import re
import stat
import time
from urllib.parse import urlsplit

from django.conf import settings

from . import net
from .base import (
    CheckContext,
    Outcome,
    ParamError,
    check_keys,
    clean_int,
    clean_number,
    failed,
    has_placeholder,
    literal_prefix,
    passed,
)

KIND = "backup"
KEYS: dict[str, str | None] = {"path": None, "url": None, "max_age_hours": "26", "min_bytes": "1"}
REQUIRED = frozenset()
S3_URL = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(?P<prefix>.*))?$")
MAGIC = re.compile(r"[*?\[]")
S3_BODY_LIMIT = 16 * 1024 * 1024


def validate(params: dict[str, str]) -> dict[str, str]:
    clean = check_keys(KIND, params, KEYS, REQUIRED)
    if ("path" in clean) == ("url" in clean):
        raise ParamError("give either path (a file glob) or url (s3://bucket/prefix), not both or neither")
    if "path" in clean:
        clean["path"] = clean_path("path", clean["path"])
    else:
        clean["url"] = clean_s3_url("url", clean["url"])
    if "max_age_hours" in clean:
        clean["max_age_hours"] = clean_number("max_age_hours", clean["max_age_hours"], 0, 24 * 3650)
    if "min_bytes" in clean:
        clean["min_bytes"] = clean_int("min_bytes", clean["min_bytes"], 0, 10**15)
    return clean


def clean_path(key: str, value: str) -> str:
    if "\x00" in value:
        raise ParamError(f"{key}: contains a NUL character")
    if ".." in value.replace("\\", "/").split("/"):
        raise ParamError(f"{key}: '..' is not allowed in a backup path")
    prefix = literal_prefix(value)
    if prefix and not prefix.startswith("/"):
        raise ParamError(f"{key}: {value!r} must be an absolute path such as /srv/backups/db-*.sql.gz")
    return value


def clean_s3_url(key: str, value: str) -> str:
    if has_placeholder(value):
        prefix = literal_prefix(value)
        if prefix and not ("s3://".startswith(prefix.lower()) or prefix.lower().startswith("s3://")):
            raise ParamError(f"{key}: {value!r} is not an s3://bucket/prefix URL")
        return value
    if not S3_URL.match(value):
        raise ParamError(f"{key}: {value!r} is not an s3://bucket/prefix URL")
    return value


def run(params: dict[str, str], ctx: CheckContext) -> Outcome:
    if "path" in params:
        newest = _newest_file(params["path"], ctx)
        where = params["path"]
    else:
        newest = _newest_object(params["url"], ctx)
        where = params["url"]
    if newest is None:
        return failed(f"nothing matches {where}")
    name, modified, size = newest
    age_hours = max(0.0, (time.time() - modified) / 3600)
    evidence = {
        "newest": name,
        "age_hours": round(age_hours, 2),
        "size": size,
        "modified": dt.datetime.fromtimestamp(modified, dt.timezone.utc).isoformat(),
    }
    max_age, min_bytes = float(params["max_age_hours"]), int(params["min_bytes"])
    problems = []
    if age_hours > max_age:
        problems.append(f"is {age_hours:.1f} hours old, more than max_age_hours {params['max_age_hours']}")
    if size < min_bytes:
        problems.append(f"is {size} bytes, fewer than min_bytes {min_bytes}")
    if problems:
        return failed(f"newest backup {name} " + " and ".join(problems), **evidence)
    return passed(f"newest backup {name} is {age_hours:.1f} hours old, {size} bytes", **evidence)


# --- files ----------------------------------------------------------------------------------


def _roots() -> list[str]:
    return [os.path.realpath(root) for root in getattr(settings, "DEPLOYCHECK_BACKUP_ROOTS", []) or []]


def _inside(path: str, roots: list[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def _newest_file(pattern: str, ctx: CheckContext):
    roots = _roots()
    if not roots:
        raise ParamError("path: no DEPLOYCHECK_BACKUP_ROOTS are configured, so no backup path may be checked")
    # Refuse before touching the disk: whether a file outside the roots exists is itself
    # something a template editor must not learn.
    fixed = MAGIC.split(pattern, 1)[0]
    fixed_dir = fixed if fixed.endswith("/") or not MAGIC.search(pattern) else os.path.dirname(fixed)
    if not _inside(os.path.realpath(fixed_dir or "/"), roots):
        raise ParamError(f"path {pattern} is outside DEPLOYCHECK_BACKUP_ROOTS ({', '.join(roots)})")
    newest = None
    for match in glob.iglob(pattern, recursive=True):
        ctx.deadline.timeout()
        real = os.path.realpath(match)
        # A symlink inside a root may point anywhere.
        if not _inside(real, roots):
            continue
        try:
            info = os.stat(real)
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode) and (newest is None or info.st_mtime > newest[1]):
            newest = (match, info.st_mtime, info.st_size)
    return newest


# --- S3 -------------------------------------------------------------------------------------


class _Raw:
    def __init__(self, body: bytes):
        self._body = body

    def stream(self, **kwargs):
        yield self._body


def _send_through_net(deadline: net.Deadline):
    """botocore's before-send hook: the request leaves through the guarded helper instead."""
    from botocore.awsrequest import AWSResponse

    def send(request, **kwargs):
        headers = {k: v for k, v in request.headers.items()}
        headers["Accept-Encoding"] = "identity"
        body = request.body
        if hasattr(body, "read"):
            body = body.read()
        answer = net.fetch(
            request.url, deadline, method=request.method, follow=False,
            headers=headers, data=body, body_limit=S3_BODY_LIMIT,
        )
        return AWSResponse(answer.url, answer.status, dict(answer.headers), _Raw(answer.body))

    return send


def _boto_session(kwargs: dict):
    import boto3
    import botocore.session

    core = botocore.session.get_session()
    # The instance and container credential endpoints live in 169.254.0.0/16, which a check
    # may never contact; boto3 would reach them outside the guarded helper.
    resolver = core.get_component("credential_provider")
    for provider in ("iam-role", "container-role"):
        resolver.remove(provider)
    return boto3.session.Session(botocore_session=core, **kwargs)


def _newest_object(url: str, ctx: CheckContext):
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    match = S3_URL.match(url)
    if match is None:
        raise ParamError(f"url: {url!r} is not an s3://bucket/prefix URL")
    bucket, prefix = match["bucket"], match["prefix"] or ""
    endpoint = getattr(settings, "DEPLOYCHECK_S3_ENDPOINT_URL", "") or None
    if endpoint:
        # Refuse a denied endpoint before boto3 spends time building a client.
        net.resolve_checked(urlsplit(endpoint).hostname or "", ctx.deadline)

    variables = ctx.variables
    session_kwargs = {}
    if variables.get("aws_access_key_id") and variables.get("aws_secret_access_key"):
        session_kwargs["aws_access_key_id"] = variables["aws_access_key_id"]
        session_kwargs["aws_secret_access_key"] = variables["aws_secret_access_key"]
        if variables.get("aws_session_token"):
            session_kwargs["aws_session_token"] = variables["aws_session_token"]
    if variables.get("aws_region"):
        session_kwargs["region_name"] = variables["aws_region"]
    left = ctx.deadline.timeout()
    config = Config(
        retries={"max_attempts": 1, "mode": "standard"},
        connect_timeout=left,
        read_timeout=left,
        # With a custom endpoint the bucket must stay in the path: a virtual-host name would
        # put an author-chosen label in front of the operator's endpoint.
        s3={"addressing_style": "path"} if endpoint else {},
    )
    client = _boto_session(session_kwargs).client("s3", endpoint_url=endpoint, config=config)
    client.meta.events.register("before-send.s3.*", _send_through_net(ctx.deadline))
    newest = None
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            ctx.deadline.timeout()
            for obj in page.get("Contents", []):
                modified = obj["LastModified"].timestamp()
                if newest is None or modified > newest[1]:
                    newest = (obj["Key"], modified, int(obj["Size"]))
    except NoCredentialsError:
        raise net.ConfigError(
            "no AWS credentials: set the run variables aws_access_key_id and aws_secret_access_key"
        ) from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise net.NetError(f"s3://{bucket}: {error.get('Code', 'error')} ({error.get('Message', exc)})") from None
    except BotoCoreError as exc:
        raise net.NetError(f"s3://{bucket}: {exc}") from None
    return newest
