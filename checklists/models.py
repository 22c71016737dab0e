"""The data, and the rules that belong to one row.

Rules that span rows (a state change writes an audit event, marks approvals stale and bumps
the run's revision) live in services/kernel.py, the one door every change to a run goes
through. Runs, their items and sections, sign-offs and audit events refuse to be written
anywhere else (see KernelGuardedQuerySet and services.kernel.guard).
"""

from __future__ import annotations

import hashlib
import secrets as pysecrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from . import secrets
from .choices import Action, Decision, ItemState, RunStatus, VerificationStatus
from .errors import RuleError

User = settings.AUTH_USER_MODEL


class KernelGuardedQuerySet(models.QuerySet):
    """Bulk writes skip save() and its signals: they ask the kernel's guard themselves."""

    def _guard(self):
        from .services.kernel import guard

        guard(self.model)

    def update(self, **kwargs):
        self._guard()
        return super().update(**kwargs)

    def bulk_create(self, *args, **kwargs):
        self._guard()
        return super().bulk_create(*args, **kwargs)

    def bulk_update(self, *args, **kwargs):
        self._guard()
        return super().bulk_update(*args, **kwargs)

    def delete(self):
        self._guard()
        return super().delete()

    def update_or_create(self, *args, **kwargs):
        self._guard()
        return super().update_or_create(*args, **kwargs)


KernelGuardedManager = models.Manager.from_queryset(KernelGuardedQuerySet)


def unique_slug(model, value: str, field: str = "slug", max_length: int = 80) -> str:
    base = slugify(value)[: max_length - 6] or "checklist"
    slug, n = base, 1
    while model.objects.filter(**{field: slug}).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


# --- Projects and environments --------------------------------------------------------------


class Project(models.Model):
    name = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Environment(models.Model):
    project = models.ForeignKey(Project, models.PROTECT, related_name="environments")
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["project__name", "name"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="environment_unique_name")]

    def __str__(self):
        return f"{self.project.name} / {self.name}"


class VariableBase(models.Model):
    """A value that fills `{{ name }}` in checks; a secret one is stored encrypted and never shown."""

    name = models.SlugField(max_length=100, allow_unicode=False)
    stored = models.TextField(blank=True)
    secret = models.BooleanField(default=False)

    class Meta:
        abstract = True
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def value(self) -> str:
        return secrets.decrypt(self.stored) if self.secret else self.stored

    @value.setter
    def value(self, plain: str) -> None:
        self.stored = secrets.encrypt(plain) if self.secret else plain

    @property
    def display_value(self) -> str:
        return secrets.MASK if self.secret else self.stored


class EnvironmentVariable(VariableBase):
    """Set by leads. A run may give its own value only when the lead marked it `per_run`."""

    environment = models.ForeignKey(Environment, models.CASCADE, related_name="variables")
    per_run = models.BooleanField(default=False, help_text="A run may give its own value (a release tag, a canary host).")

    class Meta(VariableBase.Meta):
        constraints = [models.UniqueConstraint(fields=["environment", "name"], name="envvar_unique_name")]


# --- Templates ------------------------------------------------------------------------------


class ChecklistTemplate(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(User, models.PROTECT, null=True, blank=True, related_name="+")
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("checklists:template-detail", args=[self.pk])

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None

    def latest_version(self) -> TemplateVersion | None:
        return self.versions.order_by("-number").first()


class TemplateVersion(models.Model):
    """One immutable state of a template: editing makes a new version, runs copy one."""

    template = models.ForeignKey(ChecklistTemplate, models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    required_roles = models.JSONField(default=list, blank=True)
    # {role: approvers needed} for roles that need more than one ("- [ ] Ops (2)").
    role_counts = models.JSONField(default=dict, blank=True)
    four_eyes = models.BooleanField(default=False, help_text="The person who starts a run cannot be its only approver.")
    item_count = models.PositiveIntegerField(default=0)
    section_count = models.PositiveIntegerField(default=0)
    check_count = models.PositiveIntegerField(default=0)
    source = models.TextField(blank=True, help_text="The Markdown this version was imported from, if any.")
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(User, models.PROTECT, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["template", "-number"]
        constraints = [models.UniqueConstraint(fields=["template", "number"], name="version_unique_number")]

    def __str__(self):
        return f"{self.name} v{self.number}"


class OutlineSection(models.Model):
    """A section as written in the checklist; shared by template versions and run copies."""

    position = models.PositiveIntegerField()
    level = models.PositiveSmallIntegerField(default=2)
    title = models.TextField()
    body = models.TextField(blank=True)
    optional = models.BooleanField(default=False)
    after_go_live = models.BooleanField(default=False)
    roles = models.JSONField(default=list, blank=True)
    role_counts = models.JSONField(default=dict, blank=True)
    four_eyes = models.BooleanField(default=False)
    footer = models.TextField(blank=True)

    class Meta:
        abstract = True
        ordering = ["position"]

    def __str__(self):
        return self.title


class OutlineItem(models.Model):
    position = models.PositiveIntegerField()
    depth = models.PositiveSmallIntegerField(default=0)
    text = models.TextField()
    body = models.TextField(blank=True)
    marker = models.CharField(max_length=1, default=" ", blank=True)
    optional = models.BooleanField(default=False)
    check_kind = models.CharField(max_length=20, blank=True)
    check_params = models.JSONField(default=dict, blank=True)

    class Meta:
        abstract = True
        ordering = ["position"]

    def __str__(self):
        return self.text[:80]

    @property
    def has_check(self) -> bool:
        return bool(self.check_kind)


class TemplateSection(OutlineSection):
    version = models.ForeignKey(TemplateVersion, models.CASCADE, related_name="sections")
    parent = models.ForeignKey("self", models.CASCADE, null=True, blank=True, related_name="children")


class TemplateItem(OutlineItem):
    version = models.ForeignKey(TemplateVersion, models.CASCADE, related_name="items")
    section = models.ForeignKey(TemplateSection, models.CASCADE, null=True, blank=True, related_name="items")
    parent = models.ForeignKey("self", models.CASCADE, null=True, blank=True, related_name="children")


# --- Runs -----------------------------------------------------------------------------------


class Run(models.Model):
    """A launch: a frozen copy of one template version for a project, environment and version."""

    project = models.ForeignKey(Project, models.PROTECT, related_name="runs")
    environment = models.ForeignKey(Environment, models.PROTECT, related_name="runs")
    version_label = models.CharField(max_length=200)
    # Deleting a template must never take its runs with it: the run keeps its own copy.
    template = models.ForeignKey(ChecklistTemplate, models.SET_NULL, null=True, blank=True, related_name="runs")
    template_version = models.ForeignKey(TemplateVersion, models.SET_NULL, null=True, blank=True, related_name="runs")
    template_name = models.CharField(max_length=200)
    template_version_number = models.PositiveIntegerField(default=1)
    description = models.TextField(blank=True)
    required_roles = models.JSONField(default=list, blank=True)
    role_counts = models.JSONField(default=dict, blank=True)
    four_eyes = models.BooleanField(default=False)
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.IN_PROGRESS)
    status_reason = models.TextField(blank=True)
    # Bumped by every change; the page polls with the revision it has.
    revision = models.PositiveBigIntegerField(default=1)
    started_by = models.ForeignKey(User, models.PROTECT, related_name="runs_started")
    started_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    # What the request under that key asked for: the same key with another body is refused.
    idempotency_fingerprint = models.CharField(max_length=64, blank=True)
    imported = models.BooleanField(default=False, help_text="Imported from a filled-in checklist.")
    # Kept by the kernel with every change, so that a tick, the progress bar and the gate never
    # read the whole run: a change costs the same on a 30-item and a 300-item run.
    items_total = models.PositiveIntegerField(default=0)
    items_done = models.PositiveIntegerField(default=0)
    items_skipped = models.PositiveIntegerField(default=0)
    items_blocked = models.PositiveIntegerField(default=0)
    items_in_progress = models.PositiveIntegerField(default=0)
    gate_open = models.PositiveIntegerField(default=0, help_text="Required items that hold go-live back.")

    objects = KernelGuardedManager()

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["status", "-started_at"]),
            models.Index(fields=["project", "environment", "-started_at"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["started_by", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="run_unique_idempotency_key",
            )
        ]
        permissions = [
            ("start_run", "Can start a run"),
            ("work_run", "Can tick items, write notes and run verifications"),
            ("lead_run", "Can abort a run, record a rollback and approve as a lead"),
            ("manage_templates", "Can import, edit and archive templates"),
            ("view_reports", "Can see deployment history and reports"),
        ]

    def __str__(self):
        return f"{self.project.name} {self.version_label} → {self.environment.name}"

    def get_absolute_url(self):
        return reverse("checklists:run-detail", args=[self.pk])

    @property
    def is_live(self) -> bool:
        return self.status == RunStatus.COMPLETED

    @property
    def is_open(self) -> bool:
        return self.status == RunStatus.IN_PROGRESS

    @property
    def is_ended(self) -> bool:
        return self.status in (RunStatus.ABORTED, RunStatus.ROLLED_BACK)

    def item_change_refusal(self, item: RunItem) -> str | None:
        """Why this item may not change now, or None. After go-live only after-go-live items move."""
        if self.is_open:
            return None
        if self.is_live and item.after_go_live:
            return None
        if self.is_live:
            return "This run has gone live and is locked; only its after-go-live sections can still change."
        return f"This run is {self.get_status_display().lower()} and can no longer change."

    def variables_dict(self) -> dict[str, str]:
        return {v.name: v.value for v in self.variables.all()}

    @property
    def progress(self) -> dict:
        return {
            "done": self.items_done,
            "skipped": self.items_skipped,
            "blocked": self.items_blocked,
            "in_progress": self.items_in_progress,
            "total": self.items_total,
        }

    @property
    def gate_met(self) -> bool:
        return self.gate_open == 0


class RunVariable(VariableBase):
    run = models.ForeignKey(Run, models.CASCADE, related_name="variables")

    class Meta(VariableBase.Meta):
        constraints = [models.UniqueConstraint(fields=["run", "name"], name="runvar_unique_name")]


class RunSection(OutlineSection):
    run = models.ForeignKey(Run, models.CASCADE, related_name="sections")
    parent = models.ForeignKey("self", models.CASCADE, null=True, blank=True, related_name="children")
    # Counts over this section and its subsections ("Pre-Deployment 41/120"), kept by the kernel.
    items_total = models.PositiveIntegerField(default=0)
    items_closed = models.PositiveIntegerField(default=0)
    check_count = models.PositiveIntegerField(default=0, help_text="This section's own items that carry a check.")

    objects = KernelGuardedManager()

    @property
    def progress(self) -> dict:
        return {"done": self.items_closed, "total": self.items_total}


class RunItem(OutlineItem):
    run = models.ForeignKey(Run, models.CASCADE, related_name="items")
    section = models.ForeignKey(RunSection, models.CASCADE, null=True, blank=True, related_name="items")
    parent = models.ForeignKey("self", models.CASCADE, null=True, blank=True, related_name="children")
    # Frozen when the run starts from the item's and its sections' markers.
    required = models.BooleanField(default=True)
    after_go_live = models.BooleanField(default=False)
    state = models.CharField(max_length=20, choices=ItemState.choices, default=ItemState.TODO)
    reason = models.TextField(blank=True)
    assignee = models.ForeignKey(User, models.PROTECT, null=True, blank=True, related_name="+")
    changed_by = models.ForeignKey(User, models.PROTECT, null=True, blank=True, related_name="+")
    changed_by_name = models.CharField(max_length=150, blank=True)
    changed_at = models.DateTimeField(null=True, blank=True)
    # The revision of the run at this item's last change: the poll sends what moved since.
    revision = models.PositiveBigIntegerField(default=0)
    # The sections this item counts in, its own first: the kernel moves their counts in one UPDATE.
    section_path = models.JSONField(default=list, blank=True)
    # The latest verification's status, and whether the latest *finished* one failed, each with
    # when that result was queued: what the gate and the stale rule read, kept by the kernel as
    # results come and go. A check queued earlier that finishes later never overrules them.
    verdict = models.CharField(max_length=10, choices=VerificationStatus.choices, blank=True)
    verdict_queued_at = models.DateTimeField(null=True, blank=True)
    failing = models.BooleanField(default=False)
    finished_queued_at = models.DateTimeField(null=True, blank=True)
    holds_gate = models.BooleanField(default=False)

    objects = KernelGuardedManager()

    class Meta(OutlineItem.Meta):
        indexes = [models.Index(fields=["run", "revision"]), models.Index(fields=["run", "holds_gate"])]

    def get_absolute_url(self):
        return reverse("checklists:run-detail", args=[self.run_id]) + f"#item-{self.pk}"


class Note(models.Model):
    run = models.ForeignKey(Run, models.PROTECT, related_name="notes")
    item = models.ForeignKey(RunItem, models.PROTECT, null=True, blank=True, related_name="notes")
    author = models.ForeignKey(User, models.PROTECT, related_name="+")
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    objects = KernelGuardedManager()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return self.body[:80]


class SignoffRole(models.Model):
    """A role that signs off a launch ("Tech Lead"); holding it is what lets a user sign for it."""

    name = models.CharField(max_length=100, unique=True)
    holders = models.ManyToManyField(User, related_name="signoff_roles", blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Signoff(models.Model):
    run = models.ForeignKey(Run, models.PROTECT, related_name="signoffs")
    role = models.CharField(max_length=100, blank=True, help_text="Empty: the one lead approval of a run without roles.")
    decision = models.CharField(max_length=10, choices=Decision.choices)
    user = models.ForeignKey(User, models.PROTECT, related_name="+")
    comment = models.TextField(blank=True)
    override_reason = models.TextField(blank=True)
    at = models.DateTimeField(default=timezone.now)
    stale_at = models.DateTimeField(null=True, blank=True)

    objects = KernelGuardedManager()

    class Meta:
        ordering = ["at", "id"]

    def __str__(self):
        return f"{self.role or 'Lead'}: {self.decision}"

    @property
    def stale(self) -> bool:
        return self.stale_at is not None


class VerificationResult(models.Model):
    run = models.ForeignKey(Run, models.PROTECT, related_name="verifications")
    item = models.ForeignKey(RunItem, models.PROTECT, related_name="verifications")
    kind = models.CharField(max_length=20)
    status = models.CharField(max_length=10, choices=VerificationStatus.choices, default=VerificationStatus.QUEUED)
    message = models.TextField(blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    requested_by = models.ForeignKey(User, models.PROTECT, null=True, blank=True, related_name="+")
    queued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    timeout = models.DurationField(default=timedelta(seconds=10), help_text="The check's own deadline.")
    # Set once the result's events and tick are written to the run (see verification_apply).
    applied_at = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True)
    # A check whose worker was lost is queued once more (the sweep, or its restarted worker);
    # a second loss is an error. `claimed_by` is the Celery node running it.
    attempts = models.PositiveSmallIntegerField(default=1)
    claimed_by = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-queued_at", "-id"]
        indexes = [models.Index(fields=["item", "-queued_at"]), models.Index(fields=["status", "deadline_at"])]

    def __str__(self):
        return f"{self.kind} {self.status}"


class AuditEvent(models.Model):
    """Append-only: the database itself refuses UPDATE and DELETE (see the migration)."""

    run = models.ForeignKey(Run, models.PROTECT, null=True, blank=True, related_name="events")
    item = models.ForeignKey(RunItem, models.PROTECT, null=True, blank=True, related_name="events")
    actor = models.ForeignKey(User, models.PROTECT, null=True, blank=True, related_name="+")
    # Kept beside the key so the trail reads the same after a user is renamed or deactivated;
    # "verification" when a check did it.
    actor_name = models.CharField(max_length=150)
    action = models.CharField(max_length=40, choices=Action.choices)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    at = models.DateTimeField(default=timezone.now)
    revision = models.PositiveBigIntegerField(default=0)

    objects = KernelGuardedManager()

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["run", "revision"]), models.Index(fields=["run", "at"])]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise RuleError("Audit events cannot be changed.", status=409)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise RuleError("Audit events cannot be deleted.", status=409)


# --- API access -----------------------------------------------------------------------------


class ApiToken(models.Model):
    """A bearer token for pipelines; only its SHA-256 is kept (a slow hash would cost ~0.5 s a call)."""

    user = models.ForeignKey(User, models.PROTECT, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    PREFIX = "dc_"

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.prefix}… ({self.user})"

    @staticmethod
    def hash(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()

    @classmethod
    def issue(cls, user, name: str = "") -> tuple[ApiToken, str]:
        raw = cls.PREFIX + pysecrets.token_urlsafe(32)
        token = cls.objects.create(user=user, name=name, key_hash=cls.hash(raw), prefix=raw[:10])
        return token, raw

    @classmethod
    def authenticate(cls, raw: str):
        from .services.rows import token_with_user  # every pipeline call starts here: SQL written once

        token = token_with_user(cls.hash(raw))
        if token is None:
            return None
        now = timezone.now()
        # One write a minute at most: a busy pipeline should not turn every read into a write.
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            cls.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user


# --- Outbox and integrations ------------------------------------------------------------------


class OutboxMessage(models.Model):
    """Something deploycheck owes the outside world (GitHub's answer, later a notification),
    written in the same transaction as the change that caused it and delivered by a Celery
    task with retries and backoff (services/outbox.py): a broker or receiver outage delays
    the message, never the change, and a rolled-back change sends nothing.

    `kind` names the sender in integrations.SENDERS, which reads `target` and `payload`;
    `subject` groups the messages of one thing (a GitHub deployment request) so that a final
    answer can retire reports still waiting.
    """

    kind = models.CharField(max_length=40)
    target = models.CharField(max_length=2000, help_text="Where it goes: a URL, an address.")
    payload = models.JSONField(default=dict, blank=True)
    subject = models.CharField(max_length=100, blank=True)
    run = models.ForeignKey(Run, models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Due for a (first or next) attempt from this moment; a claimed message is pushed past its lease.
    next_attempt_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True, help_text="Given up: refused by the receiver, or out of attempts.")
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["next_attempt_at"], name="outbox_due", condition=models.Q(delivered_at__isnull=True, failed_at__isnull=True)),
            models.Index(fields=["subject"], name="outbox_subject"),
        ]

    def __str__(self):
        return f"{self.kind} → {self.target}"

    @property
    def state(self) -> str:
        if self.delivered_at:
            return "delivered"
        return "failed" if self.failed_at else "pending"


class GithubDeploymentRequest(models.Model):
    """One `deployment_protection_rule` event: a GitHub deployment waiting for deploycheck.

    Matched to the newest run of its project (the repository's name), environment and version
    (the sha, a 7+ character prefix of it, or the ref unless it is the default branch), then
    answered once: `approved` when that run goes live, `rejected` when it is aborted or rolled back.
    """

    delivery = models.CharField(max_length=100, blank=True, help_text="X-GitHub-Delivery")
    repository = models.CharField(max_length=300, help_text="owner/name")
    project = models.CharField(max_length=200, help_text="The repository's name without its owner.")
    environment = models.CharField(max_length=200)
    sha = models.CharField(max_length=64, blank=True)
    ref = models.CharField(max_length=300, blank=True, help_text="Without refs/heads/ or refs/tags/; empty when it is the default branch.")
    deployment_id = models.BigIntegerField(null=True, blank=True)
    installation_id = models.BigIntegerField()
    callback_url = models.CharField(max_length=2000)
    # Where GitHub reached deploycheck: the run links in its answers when DEPLOYCHECK_BASE_URL is unset.
    site_url = models.CharField(max_length=300, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    run = models.ForeignKey(Run, models.SET_NULL, null=True, blank=True, related_name="github_requests")
    matched_at = models.DateTimeField(null=True, blank=True)
    reports = models.PositiveSmallIntegerField(default=0, help_text="Status reports queued (GitHub takes 10 a deployment).")
    answer = models.CharField(max_length=10, blank=True, help_text="approved / rejected, once queued.")
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["project", "environment"], name="ghreq_waiting", condition=models.Q(run__isnull=True))]
        constraints = [
            models.UniqueConstraint(fields=["delivery"], condition=~models.Q(delivery=""), name="ghreq_unique_delivery"),
        ]

    def __str__(self):
        return f"{self.repository} {self.sha[:7] or self.ref} → {self.environment}"


# --- Notifications (integrations/notify.py) -------------------------------------------------


class NotificationReceiver(models.Model):
    """Someone outside deploycheck who hears about a project's runs: a JSON webhook (signed
    with its secret), a Slack-format webhook, or an email address. Each message it is owed is
    an OutboxMessage whose `subject` is `notify:<id>`, so its newest one is its last status."""

    JSON, SLACK, EMAIL = "json", "slack", "email"
    KINDS = [(JSON, "JSON webhook"), (SLACK, "Slack webhook"), (EMAIL, "Email")]
    EVENTS = ["run.start", "item.blocked", "verification.failed", "signoff.approve", "signoff.reject", "run.live", "run.status"]

    project = models.ForeignKey(Project, models.CASCADE, related_name="receivers")
    kind = models.CharField(max_length=10, choices=KINDS)
    target = models.CharField(max_length=2000, help_text="The webhook's URL, or the email address.")
    events = models.JSONField(default=list)
    # The JSON webhook's signing secret, encrypted as secret variables are (checklists/secrets.py).
    secret_stored = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["project__name", "created_at", "id"]

    def __str__(self):
        return f"{self.project.name}: {self.get_kind_display()} {self.target}"

    @property
    def secret(self) -> str:
        return secrets.decrypt(self.secret_stored)

    @secret.setter
    def secret(self, plain: str) -> None:
        self.secret_stored = secrets.encrypt(plain) if plain else ""

    @property
    def subject(self) -> str:
        return f"notify:{self.pk}"

    @property
    def is_webhook(self) -> bool:
        return self.kind in (self.JSON, self.SLACK)
