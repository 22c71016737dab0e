"""Property-based fuzzing of the HTTP API from its own OpenAPI schema (schemathesis 4).

Every operation in `/api/schema` gets generated requests (valid and invalid bodies, queries and
headers; schemathesis' coverage cases, then hypothesis' fuzzing) sent in-process through Django's
WSGI application, with the bearer token of a user who is lead, member and a sign-off role holder.
Path parameters and the fields the views act on are mostly real (a template, a run and its items
made by the fixture; states, decisions, formats), so requests get past the 404s and 400s into the
services. Whatever a write created is read back (detail, export in every format, events, lists),
so a value that is stored fine but breaks a later answer is caught too.

The property (CONTRACT.md): never a 5xx; errors are JSON `{error}`.

Each example runs in a savepoint that is rolled back, so every one starts from the fixture's state.
The budget is fixed and derandomized: the same inputs on every run.
  DEPLOYCHECK_FUZZ_EXAMPLES=500   a longer local hunt (default 50 per operation)
  DEPLOYCHECK_FUZZ_COLLECT=1      never fail on a 5xx; list every distinct one in
                                  test-artifacts/api-fuzz-5xx.json (statuses per operation in
                                  api-fuzz-stats.json; with DEPLOYCHECK_FUZZ_TRACE=1 every request
                                  in api-fuzz-trace.log)
The 5xx it found are fixed and replayed one test each by test_once_a_5xx_now_a_clear_answer
(FIXED_5XX); KNOWN_5XX may hold a new one while it is being fixed.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
import traceback
from dataclasses import dataclass

import hypothesis
import pytest
import schemathesis
from django.core.management import call_command
from django.core.signals import got_request_exception, request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from werkzeug.test import Client as WerkzeugClient

from deploycheck.wsgi import application

MAX_EXAMPLES = int(os.environ.get("DEPLOYCHECK_FUZZ_EXAMPLES", "50"))
COLLECT = os.environ.get("DEPLOYCHECK_FUZZ_COLLECT") == "1"
ARTIFACTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "test-artifacts")

FUZZ_SETTINGS = hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,  # in-process calls on a shared 2-core CI box: timing says nothing
    derandomize=True,  # the same inputs on every run, so CI is stable
    database=None,
    print_blob=False,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure reports its own input
    suppress_health_check=list(HealthCheck),  # the fixture is per operation on purpose
)

# An explicit config (not a stray schemathesis.toml): the coverage phase sends its systematic
# valid and invalid cases (missing fields, wrong types, no token, other methods); the fuzzing phase
# then spends its budget on valid requests, steered by the hooks below into real data and edges.
# What would make the inputs differ from run to run is off, so CI sends the same requests every
# time: literal values lifted from the app's source (they change whenever someone edits a view),
# and the feedback from earlier answers (values reused from responses, 4xx messages analysed),
# which carry timestamps.
CONFIG = SchemathesisConfig.from_str(
    """
[phases.fuzzing.generation]
mode = "positive"

[phases.fuzzing.extra-data-sources]
responses = false

[phases.fuzzing.error-feedback]
enabled = false

[analysis.constants]
enabled = false
"""
)
schema = schemathesis.openapi.from_wsgi("/api/schema", application, config=CONFIG)


# --- What the schema cannot say: real ids and the values the views act on ------------------

# Filled by the `fuzz_world` fixture before each operation's examples are drawn.
REAL: dict[str, list] = {}

# Strings that broke, or could break, storage, headers, slugs and parsers.
EDGE_STRINGS = [
    "",
    " ",
    "x" * 101,
    "é" * 101,
    "y" * 10_000,
    "a\nb",
    "a\r\nb",
    "a\x00b",
    "\x7f\x1b[31m",
    "²",
    "١٢٣",
    "1e3",
    '"quoted"',
    "a;b",
    "\u202eevil",
    "😀" * 30,
    "<b>x</b>",
    "{{ base_url }}",
    "-",
]
# In a path: no "/" (Django's own 404 page), the rest as above.
EDGE_PATH_STRINGS = [s for s in EDGE_STRINGS if s and "/" not in s]


def _pick(*choices):
    """One of several strategies, chosen evenly (repeat one to weight it)."""
    return st.integers(0, len(choices) - 1).flatmap(lambda n: choices[n])


def _steer(generated, valid, odd):
    """One draw in six keeps schemathesis' value, four take a valid one, one an odd one."""
    return _pick(st.just(generated), valid, valid, valid, valid, odd)


def _one(*values):
    return st.sampled_from(values)


_text = st.text(max_size=120)
_line = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"), max_size=300)
_edge = st.sampled_from(EDGE_STRINGS)
_edge_line = st.sampled_from([s for s in EDGE_STRINGS if "\n" not in s and "\r" not in s])


def _checklists():
    """Markdown that parses, with fuzzed names, headings, items and bodies."""
    return st.builds(
        lambda name, section, item, body: f"# {name}\n\n## {section}\n\n- [ ] {item}\n  {body}\n\n## Sign-Off\n\n- [ ] Tech Lead\n",
        _pick(_line, _edge_line),
        _pick(_line, _edge_line),
        _pick(_line, _edge_line),
        _pick(_text, _edge),
    )


def _name(*valid):
    return lambda: (_one(*valid), _pick(_edge, _line))


def _refs():
    return [*REAL["ref"], *REAL["id"]]


# Field name -> () -> (valid values, odd values). Read while drawing, so REAL is filled by then.
BODY_VALUES = {
    "markdown": lambda: (_pick(st.just(SMALL_CHECKLIST), _checklists()), _pick(_edge, _text)),
    "name": _name("Fuzzed", "base_url", "new_var"),
    "suggest_checks": lambda: (st.booleans(), _one(None, "yes")),
    "template": lambda: (_one(*_refs()), _edge),
    "project": _name("shop", "new-project"),
    "environment": _name("production", "staging"),
    "version": _name("1.0.0", "2.0.0"),
    "variables": lambda: (
        _one({}, {"base_url": "http://127.0.0.1:9"}, {"extra": "x"}, {"s": {"value": "v", "secret": True}}),
        st.dictionaries(_pick(_line, _edge), _pick(_edge, st.none(), st.integers()), max_size=3),
    ),
    "state": lambda: (_one("todo", "in_progress", "done", "blocked", "skipped"), _edge),
    "note": lambda: (_one("not needed here"), _edge),
    "assignee": lambda: (_one("fuzzer", None), _one("nobody", "", "x" * 200)),
    "item": lambda: (_one(*REAL["item_id"]), _one(0, -1, 2**63)),
    "items": lambda: (_one(REAL["item_id"], REAL["item_id"][:1]), _one([], [0], [2**63])),
    "decision": lambda: (_one("approve", "reject"), _edge),
    "role": lambda: (_one("Tech Lead"), _one(None, "Security Lead", "tech lead", "")),
    "comment": lambda: (_one("not ready"), _edge),
    "override_reason": lambda: (_one("hotfix, approved by phone", ""), _edge),
    "status": lambda: (_one("aborted", "rolled_back"), _one("completed", "in_progress", "")),
    "reason": lambda: (_one("broke checkout"), _edge),
    "value": lambda: (_one("http://127.0.0.1:9", "x"), _pick(_edge, st.just("v" * 8193))),
    "secret": lambda: (st.booleans(), _one(None, "yes")),
    "per_run": lambda: (st.booleans(), _one(None, "yes")),
    "body": lambda: (_one("a note"), _edge),
    "url": lambda: (_one("http://127.0.0.1:9/hook", "https://hooks.slack.com/x"), _one("ftp://x", "http://169.254.169.254/", "")),
    "format": lambda: (_one("json", "slack"), _edge),
    "events": lambda: (_one(["run.start"], None), _one([], ["nope"])),
}
QUERY_VALUES = {
    "format": lambda: (_one("md", "json", "csv"), _edge),
    "status": lambda: (_one("in_progress", "completed", "aborted", "rolled_back"), _edge),
    "template": lambda: (_one(*REAL["ref"]), _edge),
    "project": _name("shop", "nope"),
    "environment": _name("production", "nope"),
    "since": lambda: (_one("2024-01-01", "2024-01-01T00:00:00Z", "2999-12-31T10:00:00+02:00"), _one("yesterday", "0001-01-01", "9999-12-31T23:59:59-12:00", "²")),
    "until": lambda: (_one("2999-01-01", "2024-01-01T00:00:00"), _one("2024-02-30", "0001-01-01T00:00:00+14:00", "9999-12-31", "²")),
    "version": lambda: (_one(1, "1.0.0"), _edge),
    "page": lambda: (_one(1, 2), _one(0, -1, 10**12, 2**63)),
    "page_size": lambda: (_one(1, 500), _one(501, 0, -5, 10**12, 2**63)),
    "archived": lambda: (st.booleans(), _one("maybe")),
    "strict": lambda: (_one(1, 0), _one("yes")),
    "token": lambda: (_one("nope"), _edge),
}
# Path parameters: the fixture's real values, some edge strings, the generated value.
STRING_PATH_PARAMETERS = {"ref", "project", "environment", "name"}


def _body_fields(raw: dict) -> dict[tuple[str, str], list[str]]:
    """The JSON body's property names of every operation, from the schema itself."""
    components = raw.get("components", {}).get("schemas", {})
    fields = {}
    for path, methods in raw.get("paths", {}).items():
        for method, definition in methods.items():
            if not isinstance(definition, dict):
                continue
            body = definition.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
            if "$ref" in body:
                body = components.get(body["$ref"].rsplit("/", 1)[-1], {})
            fields[(method.upper(), path)] = sorted(body.get("properties", {}))  # a list: draws in a fixed order
    return fields


BODY_FIELDS = _body_fields(schema.raw_schema)
_MISSING = object()


def _realistic(values: dict, generated, wanted=()):
    """Each known field steered (see `_steer`); a known field the draw left out is mostly added."""
    if not isinstance(generated, dict) or not REAL:
        return st.just(generated)
    fields = {key: _steer(value, *values[key]()) if key in values else st.just(value) for key, value in generated.items()}
    for key in wanted:
        if key in values and key not in generated:
            fields[key] = _steer(_MISSING, *values[key]())
    return st.fixed_dictionaries(fields).map(lambda d: {k: v for k, v in d.items() if v is not _MISSING})


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    strategies = {}
    for name, generated in (path_parameters or {}).items():
        real = REAL.get(name)
        if not real:
            strategies[name] = st.just(generated)
        elif name in STRING_PATH_PARAMETERS:
            strategies[name] = _steer(generated, st.sampled_from(real), st.sampled_from(EDGE_PATH_STRINGS))
        else:
            strategies[name] = _steer(generated, st.sampled_from(real), st.sampled_from(real))
    return st.fixed_dictionaries(strategies)


@schema.hook
def flatmap_body(context, body):
    operation = context.operation
    return _realistic(BODY_VALUES, body, BODY_FIELDS.get((operation.method.upper(), operation.path), ()))


@schema.hook
def flatmap_query(context, query):
    return _realistic(QUERY_VALUES, query)


@schema.hook
def flatmap_headers(context, headers):
    # POST /runs takes an optional Idempotency-Key the schema does not mention.
    if context.operation.method.upper() != "POST" or not context.operation.path.endswith("/v1/runs"):
        return st.just(headers)
    return st.sampled_from([None, None, "deploy-42", "k" * 300]).map(
        lambda key: headers if key is None else {**(headers or {}), "Idempotency-Key": key}
    )


# --- The world the requests act on ----------------------------------------------------------

SMALL_CHECKLIST = """\
# Fuzz Launch

What we do for a release.

## Before

- [ ] Tag the release
- [ ] Database answers <!-- check: tcp host=127.0.0.1 port=5432 probe=postgres -->
  - [ ] Restore tested <!-- optional -->

## Deploy

- [ ] Deploy the build
- [ ] Health endpoint answers <!-- check: http url="{{ base_url }}/health" -->

## Watch
<!-- after-go-live -->

- [ ] Error rate normal after one hour

## Sign-Off
<!-- four-eyes -->

- [ ] Tech Lead
"""


@pytest.fixture
def caught_exceptions():
    """What a 500 hid: the exception of each request that raised.

    The WSGI app runs in this thread, on this connection, inside the test's transaction. Django's
    handler closes "old" connections at each request's start and end, which inside a transaction
    breaks it; as Django's own test client does, those two receivers are off meanwhile.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    caught: list[BaseException] = []

    def remember(sender, request=None, **kwargs):
        caught.append(sys.exc_info()[1])

    got_request_exception.connect(remember)
    yield caught
    got_request_exception.disconnect(remember)
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


class Api:
    """Plain calls to the same WSGI application (as schemathesis makes them), for the fixture and
    the read-backs. Not Django's test client: it switches the connection-closing receivers back
    on after each request."""

    def __init__(self, headers: dict):
        self.client = WerkzeugClient(application)
        self.headers = headers

    def get(self, path: str, **params):
        return self.client.get(path, query_string=params, headers=self.headers)

    def send(self, method: str, path: str, body=None, headers=None, query=None):
        return self.client.open(
            path, method=method, query_string=query, json=body if body is not None else {}, headers={**self.headers, **(headers or {})}
        )


@pytest.fixture
def fuzz_world(db, caught_exceptions, monkeypatch, settings, throwaway_redis, broker_at):
    """A lead + member + Tech Lead with a token; a template; a run of it with its items.

    `POST .../verify` really publishes, to a Redis of this test's own: the tasks it queues name
    rows that are rolled back, and must not reach a worker sharing the usual Redis.
    """
    broker_at(throwaway_redis.url)
    settings.DEBUG = False
    settings.DEBUG_PROPAGATE_EXCEPTIONS = False
    monkeypatch.setenv("DEPLOYCHECK_PASSWORD", "correct horse battery staple")
    call_command("grant", "fuzzer", "lead", "member", "Tech Lead", "--create", stdout=io.StringIO())
    out = io.StringIO()
    call_command("create_api_token", "fuzzer", stdout=out)
    headers = {"Authorization": f"Bearer {out.getvalue().strip().splitlines()[-1].strip()}"}
    api = Api(headers)

    answer = api.send("POST", "/api/v1/templates/import", {"markdown": SMALL_CHECKLIST})
    assert answer.status_code == 201, answer.get_data()
    template = answer.json
    answer = api.send(
        "POST",
        "/api/v1/runs",
        {"template": template["id"], "project": "shop", "environment": "production", "version": "1.0.0", "variables": {"base_url": "http://127.0.0.1:9"}},
    )
    assert answer.status_code == 201, answer.get_data()
    run = answer.json
    # One item done and one blocked, so the gate, the export and the events have something to say.
    items = [item["id"] for item in run["items"]]
    api.send("POST", f"/api/v1/runs/{run['id']}/items/{items[0]}", {"state": "done"})
    api.send("POST", f"/api/v1/runs/{run['id']}/items/{items[-1]}", {"state": "blocked", "note": "waiting for ops"})
    # An environment variable to read, change and delete (where the API has environments).
    api.send("PUT", "/api/v1/environments/shop/production/variables/base_url", {"value": "http://127.0.0.1:9"})

    REAL.clear()
    REAL.update(
        run_id=[run["id"]],
        item_id=items,
        ref=[str(template["id"]), template["slug"]],
        id=[template["id"]],
        project=["shop"],
        environment=["production"],
        name=["base_url"],
    )
    yield api
    REAL.clear()


# --- Findings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Known5xx:
    """A 5xx this fuzz found that is not fixed yet.

    The fuzz tolerates a 5xx only when its operation and its exception ("Type: message") match an
    entry; any other 5xx fails it. `test_known_5xx` sends each entry's request and is marked
    xfail(strict=True): once the bug is fixed it XPASSes, which fails the suite. Delete the entry then.
    """

    operation: str  # "METHOD /path/{param}" as the schema names it
    exception: str  # regex on "ExceptionType: message"
    method: str
    path: str  # may hold {run_id}, {item_id}, {ref}: the fixture's run, its first item, the template id
    body: dict | None = None
    query: dict | None = None
    where: str = ""  # where it raised when found

    @property
    def id(self) -> str:
        sent = {**(self.query or {}), **(self.body or {})}
        odd = {k: v for k, v in sent.items() if isinstance(v, int) or "\\u0000" in json.dumps(v)} or sent
        return f"{self.method} {self.path} " + " ".join(f"{k}={json.dumps(v)[:30]}" for k, v in odd.items())


NUL = r"cannot contain NUL \(0x00\) bytes|unsupported Unicode escape sequence"
BIGINT = r"out of range"
R = "/api/v1/runs/{run_id}"

# Once 5xx, answered with a 4xx since (test_once_a_5xx_now_a_clear_answer replays each); the
# fuzz tolerates none of them any more. A new 5xx the fuzz finds while being fixed may be listed
# in KNOWN_5XX to keep the suite green meanwhile.
FIXED_5XX: list[Known5xx] = [
    # A NUL character ("\u0000" in JSON, %00 in a URL) reaches Postgres, which refuses it in text
    # and in jsonb: psycopg DataError, 500. Wherever text from a request is stored or looked up.
    Known5xx("POST /api/v1/templates/import", NUL, "POST", "/api/v1/templates/import", {"markdown": SMALL_CHECKLIST, "name": "a\x00b"}, where="services/templates.py:87 template_import"),
    Known5xx("GET /api/v1/templates/{ref}/export", NUL, "GET", "/api/v1/templates/a%00b/export", where="selectors.py:16 template_get"),
    Known5xx("POST /api/v1/runs", NUL, "POST", "/api/v1/runs", {"template": "a\x00b", "project": "shop", "environment": "production", "version": "1.0.0"}, where="selectors.py:16 template_get"),
    Known5xx("POST /api/v1/runs", NUL, "POST", "/api/v1/runs", {"template": "{ref}", "project": "shop", "environment": "production", "version": "1.0.0", "variables": {"extra": "a\x00b"}}, where="services/runs.py:156 _run_create"),
    Known5xx("GET /api/v1/runs", NUL, "GET", "/api/v1/runs", query={"template": "a\x00b"}, where="views/api.py:345 paginate"),
    Known5xx("GET /api/v1/runs", NUL, "GET", "/api/v1/runs", query={"project": "a\x00b"}, where="views/api.py:345 paginate"),
    Known5xx("GET /api/v1/environments/{project}/{environment}", NUL, "GET", "/api/v1/environments/a%00b/production", where="services/environments.py:41 environment_get"),
    Known5xx("PUT /api/v1/environments/{project}/{environment}/variables/{name}", NUL, "PUT", "/api/v1/environments/shop/production/variables/base_url", {"value": "a\x00b"}, where="services/environments.py:64 environment_variable_set"),
    Known5xx("DELETE /api/v1/environments/{project}/{environment}/variables/{name}", NUL, "DELETE", "/api/v1/environments/shop/a%00b/variables/base_url", where="services/environments.py:41 environment_get"),
    Known5xx("POST /api/v1/runs/{run_id}/notes", NUL, "POST", R + "/notes", {"body": "a\x00b"}, where="services/kernel.py:189 add_note"),
    Known5xx("POST /api/v1/runs/{run_id}/items/{item_id}", NUL, "POST", R + "/items/{item_id}", {"state": "skipped", "note": "a\x00b"}, where="models.py:38 update"),
    Known5xx("POST /api/v1/runs/{run_id}/status", NUL, "POST", R + "/status", {"status": "aborted", "reason": "a\x00b"}, where="models.py:42 bulk_create, the run.status event's jsonb"),
    Known5xx("POST /api/v1/runs/{run_id}/signoffs", NUL, "POST", R + "/signoffs", {"decision": "reject", "role": "Tech Lead", "comment": "a\x00b"}, where="services/kernel.py:186 add_signoff"),
    Known5xx("POST /api/v1/runs/{run_id}/signoffs", NUL, "POST", R + "/signoffs", {"decision": "approve", "role": "Tech Lead", "override_reason": "a\x00b"}, where="services/kernel.py:186 add_signoff"),
    # A page number past 2**63 / page_size: the OFFSET overflows Postgres' bigint.
    Known5xx("GET /api/v1/runs", BIGINT, "GET", "/api/v1/runs", query={"page": 2**63}, where="views/api.py:346 paginate"),
    Known5xx("GET /api/v1/runs/{run_id}/events", BIGINT, "GET", R + "/events", query={"page": 2**63}, where="views/api.py:346 paginate"),
]
KNOWN_5XX: list[Known5xx] = []


@dataclass
class Finding:
    operation: str
    status: int
    exception: str
    where: str
    reproduce: str
    count: int = 1


FINDINGS: dict[tuple, Finding] = {}
STATS: dict[str, dict[int, int]] = {}


def describe(exc: BaseException | None) -> tuple[str, str]:
    if exc is None:
        return "no exception recorded", ""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "site-packages" not in f.filename] or frames
    last = ours[-1]
    return f"{type(exc).__name__}: {str(exc)[:300]}", f"{os.path.relpath(last.filename)}:{last.lineno} in {last.name}"


def known(operation: str, exc: BaseException | None) -> Known5xx | None:
    if exc is None:
        return None
    text = f"{type(exc).__name__}: {exc}"
    return next((k for k in KNOWN_5XX if k.operation == operation and re.search(k.exception, text)), None)


CONTRACT_ERRORS = {400, 401, 403, 404, 409, 503}


def error_shape_problem(status: int, content_type: str, content: bytes) -> str | None:
    """The contract's error answers are JSON `{error}`."""
    if status not in CONTRACT_ERRORS:
        return None
    if not content_type.startswith("application/json"):
        return f"{status} answered {content_type!r}, not JSON `{{error}}`: {content[:200]!r}"
    try:
        body = json.loads(content)
    except ValueError:
        return f"{status} answered invalid JSON: {content[:200]!r}"
    if not isinstance(body, dict) or not isinstance(body.get("error"), str) or not body["error"]:
        return f"{status} answered JSON without an `error` message: {content[:200]!r}"
    return None


def record(operation: str, status: int, exc: BaseException | None, reproduce: str) -> Known5xx | None:
    summary, where = describe(exc)
    key = (operation, type(exc).__name__ if exc else status, where)
    if key in FINDINGS:
        FINDINGS[key].count += 1
    else:
        FINDINGS[key] = Finding(operation, status, summary, where, reproduce[:3000])
    return known(operation, exc)


@pytest.fixture(scope="module", autouse=True)
def findings_report():
    yield
    if FINDINGS or COLLECT:
        os.makedirs(ARTIFACTS, exist_ok=True)
        with open(os.path.join(ARTIFACTS, "api-fuzz-5xx.json"), "w") as handle:
            json.dump([f.__dict__ for f in FINDINGS.values()], handle, indent=2, ensure_ascii=False)
    if COLLECT:
        with open(os.path.join(ARTIFACTS, "api-fuzz-stats.json"), "w") as handle:
            json.dump(STATS, handle, indent=1, sort_keys=True)


# --- Read back what a write made ------------------------------------------------------------


def read_backs(label: str, case, answer: dict | None) -> list[tuple[str, dict]]:
    """The reads whose answers depend on what a successful write just stored."""
    reads = []
    run_id = None
    if label == "POST /api/v1/runs" and answer:
        run_id = answer.get("id")
    elif label.startswith("POST /api/v1/runs/{run_id}"):
        run_id = case.path_parameters.get("run_id")
    if run_id is not None:
        base = f"/api/v1/runs/{run_id}"
        reads += [(base, {}), (f"{base}/events", {}), *[(f"{base}/export", {"format": f}) for f in ("md", "json", "csv")]]
        reads += [("/api/v1/runs", {}), ("/api/v1/runs", {"format": "csv"})]
    if label == "POST /api/v1/templates/import" and answer and "id" in answer:
        reads += [(f"/api/v1/templates/{answer['id']}/export", {}), (f"/api/v1/templates/{answer.get('slug')}/export", {}), ("/api/v1/templates", {})]
    if "/environments/" in label and label.startswith(("PUT", "DELETE")):
        params = case.path_parameters
        reads += [("/api/v1/environments", {}), (f"/api/v1/environments/{params.get('project')}/{params.get('environment')}", {})]
    if label.startswith("POST /api/v1/runs") and answer:
        reads += [("/api/v1/gate", {"project": answer.get("project", "shop"), "environment": answer.get("environment", "production"), "version": answer.get("version", "1.0.0")})]
    return reads


def check_answer(label: str, status: int, content_type: str, content: bytes, caught: list, reproduce: str) -> str | None:
    """None when fine, else why it fails (a 5xx not known, or an error not shaped `{error}`)."""
    if status >= 500:
        exc = caught[-1] if caught else None
        if record(label, status, exc, reproduce) is not None or COLLECT:
            return None
        summary, where = describe(exc)
        return f"{label} answered {status}: {summary} ({where})\n{reproduce}"
    problem = error_shape_problem(status, content_type, content)
    return f"{label}: {problem}\n{reproduce}" if problem else None


# --- The fuzz -------------------------------------------------------------------------------


def real_ids_for_coverage_case(case) -> None:
    """Coverage cases are built before the fixture runs, with ids like 0: give them real ones,
    except for the path parameter the case is about, so their bodies and queries reach the view."""
    meta = case.meta
    if meta is None or str(getattr(meta.phase.name, "value", meta.phase.name)) != "coverage":
        return
    data = meta.phase.data
    about = data.parameter if str(getattr(data.parameter_location, "value", data.parameter_location)) == "path" else None
    for name in list(case.path_parameters or {}):
        if name != about and REAL.get(name):
            case.path_parameters[name] = str(REAL[name][0])


@schema.parametrize()
@FUZZ_SETTINGS
def test_api_fuzz(case, fuzz_world, caught_exceptions):
    api = fuzz_world
    label = case.operation.label
    problems = []
    real_ids_for_coverage_case(case)
    # Every example starts from the fixture's state: a savepoint rolled back after it.
    with transaction.atomic():
        del caught_exceptions[:]
        response = case.call(headers=api.headers)
        counts = STATS.setdefault(label, {})
        counts[response.status_code] = counts.get(response.status_code, 0) + 1
        if COLLECT and os.environ.get("DEPLOYCHECK_FUZZ_TRACE"):
            with open(os.path.join(ARTIFACTS, "api-fuzz-trace.log"), "a") as handle:
                handle.write(f"{label} {case.path_parameters} {case.query} {case.headers} {case.body!r:.300} -> {response.status_code} {response.content[:200]!r}\n")
        reproduce = case.as_curl_command(headers=api.headers)
        problem = check_answer(label, response.status_code, response.headers.get("content-type", [""])[0], response.content, caught_exceptions, reproduce)
        if problem and response.status_code >= 500:
            # schemathesis' own check (its failure names the operation and the status, with a curl
            # line), chained to what the 500 hid.
            try:
                case.validate_response(response, checks=[not_a_server_error], headers=api.headers)
            except Exception as failure:
                raise AssertionError(problem) from failure
        if problem:
            problems.append(problem)
        if 200 <= response.status_code < 300 and not problems:
            try:
                answer = response.json()
            except ValueError:
                answer = None
            answer = answer if isinstance(answer, dict) else None
            for path, params in read_backs(label, case, answer):
                del caught_exceptions[:]
                read = api.get(path, **params)
                if read.status_code == 404 and path == "/api/v1/gate":
                    continue  # not built yet
                problem = check_answer(
                    f"GET {path} after {label}",
                    read.status_code,
                    read.headers.get("Content-Type", ""),
                    read.get_data(),
                    caught_exceptions,
                    f"{reproduce}\nthen GET {path} {params}",
                )
                if problem:
                    problems.append(problem)
        transaction.set_rollback(True)
    assert not problems, "\n\n".join(problems)


# --- The 5xx found and fixed, one test each -------------------------------------------------


@pytest.mark.parametrize("finding", [pytest.param(k, id=k.id) for k in FIXED_5XX])
def test_once_a_5xx_now_a_clear_answer(finding, fuzz_world, caught_exceptions):
    """Each 5xx the fuzz once found, sent again: a JSON 4xx (or an empty page), never a 500."""
    ids = {"run_id": REAL["run_id"][0], "item_id": REAL["item_id"][0], "ref": REAL["ref"][0]}
    path = finding.path.format(**ids)
    body = json.loads(json.dumps(finding.body).replace('"{ref}"', json.dumps(ids["ref"]))) if finding.body is not None else None
    if finding.method == "GET":
        response = fuzz_world.get(path, **(finding.query or {}))
    else:
        response = fuzz_world.send(finding.method, path, body, query=finding.query)
    summary, where = describe(caught_exceptions[-1] if caught_exceptions else None)
    assert response.status_code < 500, f"{finding.operation} answered {response.status_code}: {summary} ({where})"
    if finding.exception == NUL:
        assert response.status_code == 400 and "NUL" in response.get_json()["error"], response.get_data()[:300]
    else:
        assert response.status_code == 200 and response.get_json()["results"] == []
