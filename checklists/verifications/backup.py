"""`backup`: the newest file under a glob, or object under an S3 prefix, is recent and not empty."""

from __future__ import annotations

import datetime as dt
import fnmatch
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
KEYS: dict[str, str | None] = {
    "path": None,
    "url": None,
    "max_age_hours": "26",
    "min_bytes": "1",
    # S3 only; fill them from secret variables (secret_key={{ s3_secret }}).
    "access_key": None,
    "secret_key": None,
    "session_token": None,
    "region": None,
}
S3_ONLY = ("access_key", "secret_key", "session_token", "region")
REQUIRED = frozenset()
S3_URL = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(?P<prefix>.*))?$")
MAGIC = re.compile(r"[*?\[]")
REGION = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
DEFAULT_REGION = "us-east-1"
NO_CREDENTIALS = (
    "no S3 credentials: give access_key/secret_key (secret variables, e.g. secret_key={{ s3_secret }}) "
    "or set DEPLOYCHECK_S3_ACCESS_KEY_ID and DEPLOYCHECK_S3_SECRET_ACCESS_KEY"
)
# Entries read from one directory between two looks at the deadline.
SCAN_CHECK_EVERY = 256
S3_BODY_LIMIT = 16 * 1024 * 1024


def validate(params: dict[str, str]) -> dict[str, str]:
    clean = check_keys(KIND, params, KEYS, REQUIRED)
    if ("path" in clean) == ("url" in clean):
        raise ParamError("give either path (a file glob) or url (s3://bucket/prefix), not both or neither")
    if "path" in clean:
        given = [key for key in S3_ONLY if key in clean]
        if given:
            raise ParamError(f"{', '.join(given)}: only for url (s3://) checks, not for path")
        clean["path"] = clean_path("path", clean["path"])
    else:
        if ("access_key" in clean) != ("secret_key" in clean):
            raise ParamError("give access_key and secret_key together")
        if "session_token" in clean and "access_key" not in clean:
            raise ParamError("session_token: give it with access_key and secret_key")
        clean["url"] = clean_s3_url("url", clean["url"])
        if "region" in clean and not has_placeholder(clean["region"]) and not REGION.match(clean["region"]):
            raise ParamError(f"region: {clean['region']!r} is not an AWS region name such as eu-west-1")
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
        newest = _newest_object(params, ctx)
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
    walk = _Walk(roots, ctx.deadline)
    newest = None
    try:
        for match in walk.matches(pattern):
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
    except net.DeadlineExceeded:
        raise net.DeadlineExceeded(
            f"searching {pattern} did not finish within {ctx.deadline.seconds:g} s "
            f"({walk.directories} directories looked at): narrow the glob or raise DEPLOYCHECK_CHECK_TIMEOUT",
            directories=walk.directories,
        ) from None
    return newest


class _Walk:
    """glob.iglob(pattern, recursive=True), but with the deadline checked before every directory
    it lists (and every few hundred entries of a big one), never leaving the backup roots, and
    visiting each real directory once under `**` (a symlink loop cannot trap it).

    Like glob: `*`, `?` and `[...]` match within one name, a name starting with "." only when the
    pattern's part does, and a `**` part matches zero or more directories (hidden ones skipped).
    """

    def __init__(self, roots: list[str], deadline: net.Deadline):
        self.roots = roots
        self.deadline = deadline
        self.directories = 0

    def matches(self, pattern: str):
        parts = pattern.split("/")
        # "a/**/**/b" is "a/**/b".
        parts = [part for i, part in enumerate(parts) if not (part == "**" and i and parts[i - 1] == "**")]
        first_magic = next((i for i, part in enumerate(parts) if MAGIC.search(part)), None)
        if first_magic is None:
            if os.path.lexists(pattern):
                yield pattern
            return
        base = "/".join(parts[:first_magic]) or "/"
        if os.path.isdir(base):
            yield from self._expand(base, parts[first_magic:])

    def listdir(self, directory: str) -> list[tuple[str, bool]]:
        """(name, is a directory) of each entry; nothing for a directory outside the roots."""
        self.deadline.timeout()
        if not _inside(os.path.realpath(directory), self.roots):
            return []
        self.directories += 1
        entries = []
        try:
            with os.scandir(directory) as found:
                for count, entry in enumerate(found, 1):
                    if count % SCAN_CHECK_EVERY == 0:
                        self.deadline.timeout()
                    try:
                        is_dir = entry.is_dir()
                    except OSError:
                        is_dir = False
                    entries.append((entry.name, is_dir))
        except OSError:
            return []
        return entries

    def _expand(self, base: str, parts: list[str], listing: list[tuple[str, bool]] | None = None):
        if not parts:
            yield base
            return
        head, rest = parts[0], parts[1:]
        if head == "**":
            yield from self._recurse(base, rest, listing)
        elif head == "":
            # "a//b" is "a/b"; a trailing "/" matches directories only, never a backup file.
            if rest:
                yield from self._expand(base, rest, listing)
        elif not MAGIC.search(head):
            path = os.path.join(base, head)
            if not rest:
                if os.path.lexists(path):
                    yield path
            elif os.path.isdir(path):
                yield from self._expand(path, rest)
        else:
            hidden_too = head.startswith(".")
            for name, is_dir in listing if listing is not None else self.listdir(base):
                if (hidden_too or not name.startswith(".")) and fnmatch.fnmatchcase(name, head):
                    if not rest:
                        yield os.path.join(base, name)
                    elif is_dir:
                        yield from self._expand(os.path.join(base, name), rest)

    def _recurse(self, top: str, rest: list[str], listing: list[tuple[str, bool]] | None):
        seen: set[str] = set()
        stack = [(top, listing)]
        while stack:
            directory, entries = stack.pop()
            real = os.path.realpath(directory)
            if real in seen:
                continue
            seen.add(real)
            if entries is None:
                entries = self.listdir(directory)
            if rest:
                yield from self._expand(directory, rest, entries)
            else:
                # A trailing "**" matches everything below, files included.
                for name, is_dir in entries:
                    if not is_dir and not name.startswith("."):
                        yield os.path.join(directory, name)
            for name, is_dir in reversed(entries):
                if is_dir and not name.startswith("."):
                    stack.append((os.path.join(directory, name), None))


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


def _credentials(params: dict[str, str], ctx: CheckContext) -> dict[str, str]:
    """Only credentials given on purpose: the check's parameters, the run's aws_* variables, or
    the DEPLOYCHECK_S3_* settings. Never boto3's default chain (AWS_* environment variables,
    ~/.aws, an instance or container role): whoever writes a template must not borrow the
    server's own identity."""
    if "access_key" in params:
        if params["secret_key"] not in {secret.strip() for secret in ctx.secrets}:
            # A key written into the checklist, or filled from a plain variable, is stored and
            # shown in clear text; only secret variables are encrypted and redacted.
            raise ParamError("secret_key must come from a secret variable, e.g. secret_key={{ s3_secret }}")
        given = {"aws_access_key_id": params["access_key"], "aws_secret_access_key": params["secret_key"]}
        if params.get("session_token"):
            given["aws_session_token"] = params["session_token"]
        return given
    variables = ctx.variables
    if variables.get("aws_access_key_id") and variables.get("aws_secret_access_key"):
        # The run variables the first version of this check read; explicit all the same.
        given = {
            "aws_access_key_id": variables["aws_access_key_id"],
            "aws_secret_access_key": variables["aws_secret_access_key"],
        }
        if variables.get("aws_session_token"):
            given["aws_session_token"] = variables["aws_session_token"]
        return given
    key_id = getattr(settings, "DEPLOYCHECK_S3_ACCESS_KEY_ID", "") or ""
    secret = getattr(settings, "DEPLOYCHECK_S3_SECRET_ACCESS_KEY", "") or ""
    if key_id and secret:
        return {"aws_access_key_id": key_id, "aws_secret_access_key": secret}
    if key_id or secret:
        raise net.ConfigError("set DEPLOYCHECK_S3_ACCESS_KEY_ID and DEPLOYCHECK_S3_SECRET_ACCESS_KEY together")
    raise net.ConfigError(NO_CREDENTIALS)


def _isolated_botocore_session():
    """A botocore session that reads nothing from the process: no AWS_* environment variable,
    no ~/.aws file, no profile, no configured endpoint, and an empty credential chain."""
    import botocore.session
    from botocore.credentials import CredentialResolver

    session_vars = {
        # (config file key, environment variables, default, conversion): keep only the default.
        name: (None, None, default, conversion)
        for name, (_key, _env, default, conversion) in botocore.session.Session.SESSION_VARIABLES.items()
    }
    session_vars["config_file"] = (None, None, os.devnull, None)
    session_vars["credentials_file"] = (None, None, os.devnull, None)
    session_vars["ignore_configured_endpoint_urls"] = (None, None, True, None)
    core = botocore.session.Session(session_vars=session_vars)
    # The default chain would read the environment, ~/.aws and the instance and container
    # credential endpoints (169.254.0.0/16, outside the guarded helper); with none of it a
    # client without explicit keys could only fail.
    core.register_component("credential_provider", CredentialResolver(providers=[]))
    return core


def _newest_object(params: dict[str, str], ctx: CheckContext):
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    url = params["url"]
    match = S3_URL.match(url)
    if match is None:
        raise ParamError(f"url: {url!r} is not an s3://bucket/prefix URL")
    bucket, prefix = match["bucket"], match["prefix"] or ""
    # Before any lookup or request: without explicit credentials there is nothing to send.
    credentials = _credentials(params, ctx)
    region = params.get("region") or ctx.variables.get("aws_region") or DEFAULT_REGION
    if not REGION.match(region):
        raise ParamError(f"region: {region!r} is not an AWS region name such as eu-west-1")
    endpoint = getattr(settings, "DEPLOYCHECK_S3_ENDPOINT_URL", "") or None
    if endpoint:
        # Refuse a denied endpoint before botocore spends time building a client.
        net.resolve_checked(urlsplit(endpoint).hostname or "", ctx.deadline)

    left = ctx.deadline.timeout()
    config = Config(
        retries={"max_attempts": 1, "mode": "standard"},
        connect_timeout=left,
        read_timeout=left,
        # With a custom endpoint the bucket must stay in the path: a virtual-host name would
        # put an author-chosen label in front of the operator's endpoint.
        s3={"addressing_style": "path"} if endpoint else {},
    )
    client = _isolated_botocore_session().create_client(
        "s3", region_name=region, endpoint_url=endpoint, config=config, **credentials
    )
    client.meta.events.register("before-send.s3.*", _send_through_net(ctx.deadline))
    newest = None
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            ctx.deadline.timeout()
            for obj in page.get("Contents", []):
                modified = obj["LastModified"].timestamp()
                if newest is None or modified > newest[1]:
                    newest = (obj["Key"], modified, int(obj["Size"]))
    except NoCredentialsError:  # cannot happen with explicit keys; never fall back to anything
        raise net.ConfigError(NO_CREDENTIALS) from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise net.NetError(f"s3://{bucket}: {error.get('Code', 'error')} ({error.get('Message', exc)})") from None
    except BotoCoreError as exc:
        raise net.NetError(f"s3://{bucket}: {exc}") from None
    return newest
