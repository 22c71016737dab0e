"""Fill the database with a believable deployment history, fast: `generate_history --runs 10000 --items 300`.

What a manager's reports and the scale benchmark need: a few teams' projects, production and
staging, three checklists with two versions each, and runs spread over the last weeks that go
live, get aborted or rolled back, skip and block items with reasons, fail checks and re-run
them, and now and then pass the gate with an override. Running it again adds more runs to the
same people, projects and templates.

Templates are imported through the real service (a handful of them); runs and everything in
them are written with bulk inserts, about a hundred runs to a transaction, with every counter
the kernel keeps (the run's items_* and gate_open, each section's counts, each item's
holds_gate and verdict) computed from the rows written, by the same gate rules.
"""

from __future__ import annotations

import json
import math
import random
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from checklists import gate
from checklists import markdown as md
from checklists import services
from checklists.choices import Action, Decision, ItemState, RunStatus, VerificationStatus
from checklists.models import (
    AuditEvent,
    ChecklistTemplate,
    Note,
    Run,
    RunItem,
    RunSection,
    Signoff,
    SignoffRole,
    VerificationResult,
)
from checklists.services.kernel import guard, history_load

MEMBERS = ["ana", "ben", "chen", "dara", "eli", "fay", "gus", "hana", "ivo", "jun"]
LEADS = ["lena", "omar", "priya"]
ROLES = ["Tech Lead", "Security Lead"]
PROJECTS = {"shop": 0.3, "billing": 0.2, "search": 0.15, "auth": 0.15, "mobile-api": 0.12, "data-pipeline": 0.08}
ENVIRONMENTS = {"production": 0.6, "staging": 0.4}
TEMPLATES = {"Web Service Launch": 0.55, "Database Migration": 0.25, "Mobile Backend Release": 0.2}

SECTIONS = [
    "Pre-Deployment", "Infrastructure", "Database", "Security", "Secrets and Config", "Monitoring", "Alerting",
    "Backups", "Networking", "DNS and TLS", "Capacity", "Feature Flags", "Deploy", "Smoke Tests", "Performance",
    "Data Migration", "Caches", "Queues and Workers", "Third-Party Services", "Compliance", "Documentation",
    "Support Readiness", "Rollback Plan", "Communication", "Cost", "Access Control", "Logging", "Search Index",
    "Mobile Clients", "Release Notes",
]
ACTIONS = [
    "Confirm {} owner is on call", "Review {} change log", "Check {} dashboards are green", "Verify {} runbook is current",
    "Dry-run {} steps in staging", "Confirm {} limits are raised", "Announce {} window in #deploys", "Record {} baseline",
    "Check {} error budget", "Confirm {} sign-off from the team", "Verify {} alarms fire in a test", "Tag {} release",
]
CHECKS = [
    ("http", 'url="{{ base_url }}/health"'),
    ("tls", 'host="{{ host }}" min_days=14'),
    ("tcp", "host=127.0.0.1 port=5432"),
    ("dns", 'name="{{ host }}"'),
    ("headers", 'url="{{ base_url }}/"'),
]
SKIP_REASONS = [
    "Not applicable to this release", "Covered by the platform team", "No schema change this time",
    "Feature flag stays off", "Done in the previous release", "Staging only", "Vendor window not open",
]
BLOCK_REASONS = [
    "Waiting for the AWS quota increase", "On-call engineer not reachable", "Certificate renewal pending",
    "Load test failed, investigating", "Migration lock timeout", "Security review not finished",
]
NOTES = [
    "CDN cache purge took longer than usual", "Hotfix merged before go-live", "Customer support briefed",
    "Traffic shifted 10% then 100%", "Error rate stayed flat after deploy", "Rolled forward a config typo",
    "DB migration ran in 4 minutes", "Paging noise from an unrelated alert",
]
ROLLBACK_REASONS = ["Error rate doubled after go-live", "Payment callbacks failing", "Memory leak in the new worker", "Login latency regression"]
ABORT_REASONS = ["Launch window missed", "Blocked by the security review", "Upstream outage", "Release pulled by product"]
OVERRIDE_REASONS = ["Check is flaky, verified by hand", "Known issue, fix scheduled", "Customer deadline, risk accepted"]
FAIL_RATE = {"http": 0.06, "tls": 0.02, "tcp": 0.03, "dns": 0.015, "headers": 0.10}
CHUNK = 100


def _pick(rng: random.Random, weights: dict):
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def checklist_markdown(name: str, items: int, *, version: int) -> str:
    """A template of `items` items in sections of about ten, one item in eight with a check.

    Version 2 renames one item, adds one and drops one (what a real edit looks like), so that
    runs of the two versions can be compared.
    """
    sections = max(2, round(items / 10))
    out = [f"# {name}\n\nGenerated history for reports and benchmarks.\n"]
    n = 0
    for s in range(sections):
        title = SECTIONS[s % len(SECTIONS)] + (f" {s // len(SECTIONS) + 1}" if s >= len(SECTIONS) else "")
        out.append(f"\n## {title}\n")
        if s == sections - 1:
            out.append("<!-- after-go-live -->\n")
        out.append("\n")
        count = items // sections + (1 if s < items % sections else 0)
        for i in range(count):
            text = ACTIONS[(n + s) % len(ACTIONS)].format(title.lower()) + f" ({i + 1})"
            if version == 2 and n == 2:
                text = "Confirm the rollback command was rehearsed"
            if version == 2 and n == 5:
                n += 1
                continue
            marks = []
            if n % 8 == 3:
                kind, params = CHECKS[(n // 8) % len(CHECKS)]
                marks.append(f"<!-- check: {kind} {params} -->")
            if n % 17 == 9:
                marks.append("<!-- optional -->")
            out.append(f"- [ ] {text}{' ' + ' '.join(marks) if marks else ''}\n")
            n += 1
        if version == 2 and s == 0:
            out.append("- [ ] Link the incident channel in the release ticket\n")
    out.append("\n## Sign-Off\n\n" + "".join(f"- [ ] {role}\n" for role in ROLES))
    return "".join(out)


class Command(BaseCommand):
    help = "Generate a realistic deployment history with bulk inserts (for reports, demos and benchmarks)."

    def add_arguments(self, parser):
        parser.add_argument("--runs", type=int, default=1000)
        parser.add_argument("--items", type=int, default=300, help="Items per checklist (sections of about ten).")
        parser.add_argument("--weeks", type=int, default=104, help="How far back the runs start.")
        parser.add_argument("--seed", type=int, default=None, help="For the same history again.")

    def handle(self, *args, runs, items, weeks, seed, **options):
        if runs < 1 or not 4 <= items <= 2000 or weeks < 1:
            raise CommandError("--runs at least 1, --items between 4 and 2000, --weeks at least 1")
        rng = random.Random(seed)
        started = timezone.now()
        world = self._world(items)
        now = timezone.now()
        moments = sorted(now - timedelta(seconds=rng.uniform(0, weeks * 7 * 86400)) for _ in range(runs))
        for first in range(0, runs, CHUNK):
            self._chunk(rng, world, moments[first:first + CHUNK], now, weeks)
        elapsed = (timezone.now() - started).total_seconds()
        self.stdout.write(f"generated {runs} runs of {items} items in {elapsed:.1f} s")

    # --- People, projects, templates: few rows, through the ordinary doors -------------------

    def _world(self, items: int) -> dict:
        User = get_user_model()
        people = {}
        for name in MEMBERS + LEADS:
            user = User.objects.filter(username=name).first()
            if user is None:
                # Generated people cannot log in: no password is made up for them.
                user = User(username=name)
                user.set_unusable_password()
                user.save()
                user.groups.add(Group.objects.get(name="lead" if name in LEADS else "member"))
            people[name] = user
        for role in ROLES:
            signoff_role = SignoffRole.objects.filter(name__iexact=role).first() or SignoffRole.objects.create(name=role)
            signoff_role.holders.add(*[people[n] for n in LEADS])
        environments = {}
        for project in PROJECTS:
            for env in ENVIRONMENTS:
                environments[(project, env)] = services.environment_get_or_create(project, env)
        templates = {}
        for name in TEMPLATES:
            full = name if items == 300 else f"{name} ({items} items)"
            template = ChecklistTemplate.objects.filter(name=full).first()
            if template is None:
                v1 = services.template_import(md.parse(checklist_markdown(full, items, version=1)), actor=people["lena"], name=full)
                template = v1.template
                services.template_version_create(template, md.parse(checklist_markdown(full, items, version=2)), actor=people["lena"], name=full)
            versions = list(template.versions.order_by("number"))[-2:]
            templates[name] = [self._outline(v) for v in versions]
        return {"people": people, "environments": environments, "templates": templates}

    def _outline(self, version) -> dict:
        sections = list(version.sections.order_by("position"))
        agl = {s.pk for s in sections if s.after_go_live}
        outline_items = []
        for i in version.items.order_by("position"):
            outline_items.append(i)
        # Some items are skipped or blocked far more often than others, as in real life: the
        # reports should have something to say about them.
        rng = random.Random(f"{version.name} v{version.number}")  # the same in every database
        propensity = {i.pk: (0.25 if rng.random() < 0.06 else 0.004, 0.12 if rng.random() < 0.03 else 0.001) for i in outline_items}
        fail_boost = {i.pk: (4.0 if rng.random() < 0.15 else 0.5) for i in outline_items}
        return {
            "version": version,
            "sections": sections,
            "items": outline_items,
            "after_go_live": agl,
            "propensity": propensity,
            "fail_boost": fail_boost,
        }

    # --- Runs: bulk inserts -------------------------------------------------------------------

    def _chunk(self, rng: random.Random, world: dict, moments: list, now, weeks: int) -> None:
        people = world["people"]
        members = [people[n] for n in MEMBERS]
        leads = [people[n] for n in LEADS]
        plans = []
        for started_at in moments:
            name = _pick(rng, TEMPLATES)
            age = (now - started_at).total_seconds() / (weeks * 7 * 86400)  # 1 = oldest, 0 = now
            outline = world["templates"][name][0 if age > 0.5 and len(world["templates"][name]) > 1 else -1]
            # Launches get faster over the months: the median start to go-live drops by half.
            hours = math.exp(rng.gauss(math.log(1.5 + 3 * age), 0.45))
            duration = timedelta(hours=hours)
            if started_at + duration > now - timedelta(minutes=5) or (now - started_at).days < 2 and rng.random() < 0.5:
                outcome = RunStatus.IN_PROGRESS
            else:
                outcome = rng.choices(
                    [RunStatus.COMPLETED, RunStatus.ABORTED, RunStatus.ROLLED_BACK], weights=[0.87 - 0.04 * age, 0.07, 0.06 + 0.04 * age]
                )[0]
            crew = rng.sample(members, 3)
            plans.append({
                "outline": outline,
                "started_at": started_at,
                "duration": duration,
                "outcome": outcome,
                "override": outcome in (RunStatus.COMPLETED, RunStatus.ROLLED_BACK) and rng.random() < 0.05,
                "crew": crew,
                "environment": world["environments"][(_pick(rng, PROJECTS), _pick(rng, ENVIRONMENTS))],
                "version_label": f"{2 + int((1 - age) * 8)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}",
            })
        # Runs, items, sections, notes, sign-offs and audit events refuse writes outside the
        # kernel (services.kernel.guard), because one change to a live run must lock, log and
        # count in one place. A generator writes whole finished histories of runs nobody is
        # looking at: the kernel opens its guard for these bulk inserts (history_load), and
        # every count the kernel keeps is computed here from the rows written, with the same
        # gate rules (gate.py). Going through run_change per tick would take hours for three
        # million items.
        with history_load():
            self._write(rng, plans, leads, now)

    def _write(self, rng: random.Random, plans: list[dict], leads: list, now) -> None:
        """Everything is worked out in memory first (counts included), then inserted table by
        table: no row is written twice."""
        runs, sections, items, results, notes, signoffs, events = [], [], [], [], [], [], []
        for plan in plans:
            version = plan["outline"]["version"]
            environment = plan["environment"]
            run = Run(
                project_id=environment.project_id,
                environment=environment,
                version_label=plan["version_label"],
                template_id=version.template_id,
                template_version=version,
                template_name=version.name,
                template_version_number=version.number,
                required_roles=version.required_roles,
                role_counts=version.role_counts,
                four_eyes=version.four_eyes,
                status=plan["outcome"],
                started_by=plan["crew"][0],
                started_at=plan["started_at"],
            )
            runs.append(run)
            plan["sections"] = {}
            for s in plan["outline"]["sections"]:  # the sign-off section too, as a run's copy has it
                row = {
                    "run": run, "position": s.position, "level": s.level, "title": s.title, "optional": s.optional,
                    "after_go_live": s.after_go_live, "roles": s.roles, "role_counts": s.role_counts, "four_eyes": s.four_eyes,
                    "items_total": 0, "items_closed": 0, "check_count": 0,
                }
                plan["sections"][s.pk] = row
                sections.append(row)
            self._items(rng, run, plan, items, results, now)
            self._ending(rng, run, plan, leads, notes, signoffs, events)
        Run.objects.bulk_create(runs)
        for rows in (sections, items, results, notes, signoffs, events):
            for row in rows:
                row["run_id"] = row.pop("run").pk
        _insert(RunSection, sections, ids=True)
        for item in items:
            section = item.pop("section")
            item["section_id"] = section["id"] if section else None
            item["section_path"] = [section["id"]] if section else []
        _insert(RunItem, items, ids=True)
        for result in results:
            result["item_id"] = result.pop("item")["id"]
        _insert(VerificationResult, results)
        _insert(Note, notes)
        _insert(Signoff, signoffs)
        _insert(AuditEvent, events)

    def _items(self, rng: random.Random, run: Run, plan: dict, items: list, results: list, now) -> None:
        outline = plan["outline"]
        outcome = plan["outcome"]
        started_at, duration = plan["started_at"], plan["duration"]
        live_at = started_at + duration
        total = len(outline["items"])
        # How far an unfinished run got; finished ones tick everything before go-live.
        reach = plan["reach"] = rng.uniform(0.15, 0.85) if outcome in (RunStatus.IN_PROGRESS, RunStatus.ABORTED) else 1.0
        forced_open = set()
        if plan["override"]:
            required = [i.pk for i in outline["items"] if not i.optional and i.section_id not in outline["after_go_live"]]
            forced_open = set(rng.sample(required, min(len(required), rng.randint(1, 3))))
        counts = {"items_total": 0, "items_done": 0, "items_skipped": 0, "items_blocked": 0, "items_in_progress": 0, "gate_open": 0}
        revision = 1
        for index, t in enumerate(outline["items"]):
            section = plan["sections"].get(t.section_id)
            after_go_live = t.section_id in outline["after_go_live"]
            required = not (t.optional or after_go_live)
            progress = index / total
            skip_p, block_p = outline["propensity"][t.pk]
            state, reason, verdict = ItemState.TODO, "", ""
            if after_go_live:
                if outcome in (RunStatus.COMPLETED, RunStatus.ROLLED_BACK) and live_at + timedelta(hours=2) < now and rng.random() < 0.9:
                    state = ItemState.DONE
                moment = live_at + timedelta(minutes=rng.uniform(20, 180))
            else:
                moment = started_at + duration * progress * rng.uniform(0.9, 1.0)
                if progress <= reach:
                    state = ItemState.DONE
                    if t.optional and rng.random() < 0.3 or rng.random() < skip_p:
                        state, reason = ItemState.SKIPPED, rng.choice(SKIP_REASONS)
                    elif outcome == RunStatus.ABORTED and progress > reach - 0.1 and rng.random() < max(block_p * 40, 0.05):
                        state, reason = ItemState.BLOCKED, rng.choice(BLOCK_REASONS)
                    elif outcome == RunStatus.IN_PROGRESS and rng.random() < block_p:
                        state, reason = ItemState.BLOCKED, rng.choice(BLOCK_REASONS)
                elif outcome == RunStatus.IN_PROGRESS and progress <= reach + 0.03:
                    state = ItemState.IN_PROGRESS
                if t.pk in forced_open:
                    state, reason = rng.choice([(ItemState.BLOCKED, rng.choice(BLOCK_REASONS)), (ItemState.DONE, ""), (ItemState.IN_PROGRESS, "")])
            # An open run's ticks are all in the past.
            moment = min(moment, now - timedelta(seconds=rng.uniform(60, 3600)))
            history = []
            if t.check_kind and state in (ItemState.DONE, ItemState.BLOCKED):
                if rng.random() < FAIL_RATE.get(t.check_kind, 0.05) * outline["fail_boost"][t.pk]:
                    history.append((VerificationStatus.FAILED if rng.random() < 0.8 else VerificationStatus.ERROR, moment - timedelta(minutes=12)))
                if t.pk in forced_open and state == ItemState.DONE:
                    history.append((VerificationStatus.FAILED, moment - timedelta(minutes=2)))
                else:
                    history.append((VerificationStatus.PASSED, moment - timedelta(minutes=1)))
                verdict = history[-1][0]
            touched = state != ItemState.TODO
            holds = gate.holds_gate(required=required, state=state, verdict=verdict, reason=reason)
            if touched:
                revision += 1 + len(history)
            who = plan["crew"][index % 3] if touched else None
            item = {
                "run": run, "section": section, "position": t.position, "text": t.text, "optional": t.optional,
                "check_kind": t.check_kind, "check_params": t.check_params, "required": required, "after_go_live": after_go_live,
                "state": state, "reason": reason, "changed_by_id": who.pk if who else None, "changed_by_name": who.username if who else "",
                "changed_at": moment if touched else None, "revision": revision if touched else 1,
                "verdict": verdict, "verdict_queued_at": history[-1][1] if history else None,
                "failing": gate.is_failing(verdict), "finished_queued_at": history[-1][1] if history else None, "holds_gate": holds,
            }
            items.append(item)
            for status, queued_at in history:
                results.append({
                    "run": run, "item": item, "kind": t.check_kind, "status": status, "message": f"check {status}",
                    "duration_ms": rng.randint(40, 900), "queued_at": queued_at, "started_at": queued_at,
                    "finished_at": queued_at + timedelta(seconds=1), "applied_at": queued_at + timedelta(seconds=1),
                })
            counts["items_total"] += 1
            counts["gate_open"] += holds
            if f"items_{state}" in counts:
                counts[f"items_{state}"] += 1
            if section is not None:
                section["items_total"] += 1
                section["items_closed"] += state in (ItemState.DONE, ItemState.SKIPPED)
                section["check_count"] += bool(t.check_kind)
        for name, value in counts.items():
            setattr(run, name, value)
        run.revision = revision

    def _ending(self, rng: random.Random, run: Run, plan: dict, leads: list, notes: list, signoffs: list, events: list) -> None:
        """Notes, sign-offs, the status and the run-level audit trail. Per-item events are left
        out: nothing in history or reports reads them, and they would double the rows written."""
        started_at, live_at = plan["started_at"], plan["started_at"] + plan["duration"]
        starter = plan["crew"][0]
        lead = leads[rng.randrange(len(leads))]
        revision = run.revision

        def event(action, at, actor, after=None):
            nonlocal revision
            revision += 1
            events.append({"run": run, "actor_id": actor.pk, "actor_name": actor.username, "action": action, "at": at, "after": after, "revision": revision})

        events.append({
            "run": run, "actor_id": starter.pk, "actor_name": starter.username, "action": Action.RUN_START, "at": started_at, "revision": 1,
            "after": {"template": run.template_name, "template_version": run.template_version_number, "version": run.version_label},
        })
        for _ in range(rng.choices([0, 1, 2], weights=[0.7, 0.2, 0.1])[0]):
            author = rng.choice(plan["crew"])
            at = min(started_at + plan["duration"] * rng.random(), timezone.now())
            notes.append({"run": run, "author_id": author.pk, "body": rng.choice(NOTES), "created_at": at})
            event(Action.NOTE_ADD, at, author, after={"body": notes[-1]["body"]})
        if run.status in (RunStatus.COMPLETED, RunStatus.ROLLED_BACK):
            override = rng.choice(OVERRIDE_REASONS) if plan["override"] else ""
            for n, role in enumerate(run.required_roles):
                signer = leads[(leads.index(lead) + n) % len(leads)]
                at = live_at - timedelta(minutes=len(run.required_roles) - n)
                reason = override if n == 0 else ""
                signoffs.append({"run": run, "role": role, "decision": Decision.APPROVE, "user_id": signer.pk, "override_reason": reason, "at": at})
                event(Action.SIGNOFF_APPROVE, at, signer, after={"role": role, "decision": Decision.APPROVE})
                if reason:
                    event(Action.SIGNOFF_OVERRIDE, at, signer, after={"role": role, "override_reason": reason})
            run.completed_at = live_at
            event(Action.RUN_LIVE, live_at, lead, after={"status": RunStatus.COMPLETED})
            if run.status == RunStatus.ROLLED_BACK:
                run.ended_at = live_at + timedelta(minutes=rng.uniform(10, 600))
                run.status_reason = rng.choice(ROLLBACK_REASONS)
                event(Action.RUN_STATUS, run.ended_at, lead, after={"status": run.status, "reason": run.status_reason})
        elif run.status == RunStatus.ABORTED:
            run.ended_at = started_at + plan["duration"] * (plan["reach"] + 0.05)
            run.status_reason = rng.choice(ABORT_REASONS)
            event(Action.RUN_STATUS, run.ended_at, lead, after={"status": run.status, "reason": run.status_reason})
        run.revision = revision


def _insert(model, rows: list[dict], *, ids: bool = False) -> None:
    """Insert rows given as {attname: value}; with `ids`, each row learns its id.

    On PostgreSQL this is COPY, about ten times faster than bulk_create for the millions of
    items a 10,000-run history holds (Django builds a model instance and prepares every value
    of every row); ids come from the table's own sequence first. Elsewhere (SQLite under `make
    run`) it is bulk_create. Either way it asks the kernel's guard first, as the ORM would.
    """
    from django.db import connection
    from psycopg import sql

    guard(model)
    if not rows:
        return
    fields = [f for f in model._meta.concrete_fields if not (f.primary_key and not ids)]
    if connection.vendor != "postgresql":
        objects = [model(**row) for row in rows]
        model.objects.bulk_create(objects, batch_size=2000)
        for row, obj in zip(rows, objects):
            row["id"] = obj.pk
        return
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if ids:
            cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, len(rows)])
            for row, (pk,) in zip(rows, cursor.fetchall()):
                row["id"] = pk
        defaults = {f.attname: f.get_default() for f in fields}
        columns = [f.attname for f in fields]
        json_columns = {f.attname for f in fields if f.get_internal_type() == "JSONField"}
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, [f.column for f in fields])))
        with cursor.cursor.copy(statement) as copy:
            for row in rows:
                values = [row.get(c, defaults[c]) for c in columns]
                # A JSON value goes as its text; None stays SQL NULL, as the ORM stores it.
                copy.write_row([json.dumps(v) if c in json_columns and v is not None else v for c, v in zip(columns, values)])
