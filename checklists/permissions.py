"""Who may do what: the one place pages, the API and commands ask."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser

from .choices import AccessRole

APP = "checklists"
VIEW = ["view_run", "view_checklisttemplate", "view_project", "view_environment"]
WORK = ["start_run", "work_run"]
LEAD = ["lead_run", "manage_templates", "view_reports"]

GROUP_PERMISSIONS = {
    AccessRole.VIEWER: VIEW,
    AccessRole.MEMBER: VIEW + WORK,
    AccessRole.LEAD: VIEW + WORK + LEAD,
    AccessRole.MANAGER: VIEW + ["view_reports"],
    AccessRole.ADMIN: VIEW + WORK + LEAD,
}


def sync_groups(sender=None, **kwargs) -> None:
    """Create the access groups with their permissions (run after every migrate)."""
    from django.contrib.auth.models import Group, Permission

    for role, codenames in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role.value)
        perms = Permission.objects.filter(content_type__app_label=APP, codename__in=codenames)
        group.permissions.set(perms)


def _has(user, codename: str) -> bool:
    if user is None or isinstance(user, AnonymousUser) or not user.is_active:
        return False
    return user.has_perm(f"{APP}.{codename}")


def can_view(user) -> bool:
    """Readers, and anyone who holds a sign-off role: they must see what they sign."""
    if _has(user, "view_run"):
        return True
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if not hasattr(user, "_holds_any_signoff_role"):
        user._holds_any_signoff_role = user.signoff_roles.exists()
    return user._holds_any_signoff_role


def can_start_run(user) -> bool:
    return _has(user, "start_run")


def can_work(user) -> bool:
    """Tick items, write notes, assign, run verifications."""
    return _has(user, "work_run")


def can_lead(user) -> bool:
    """Abort, record a rollback, approve a run that needs no named role."""
    return _has(user, "lead_run")


def can_manage_templates(user) -> bool:
    return _has(user, "manage_templates")


def can_view_reports(user) -> bool:
    return _has(user, "view_reports")


def holds_role(user, role: str) -> bool:
    """A sign-off role is held by name, whatever else the user is."""
    return role.lower() in held_roles(user)


def held_roles(user) -> set[str]:
    """The sign-off roles a user holds, lower-cased, in one query (kept on the user)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return set()
    if not hasattr(user, "_held_roles"):
        user._held_roles = {name.lower() for name in user.signoff_roles.values_list("name", flat=True)}
    return user._held_roles


def can_sign(user, role: str) -> bool:
    return holds_role(user, role) if role else can_lead(user)


# --- One door for views: a permission, and a run fetched for a user and a need ----------------

NEEDS = {
    "view": (can_view, "You are not allowed to see this."),
    "start": (can_start_run, "Starting a run needs the member role."),
    "work": (can_work, "This needs the member role."),
    "lead": (can_lead, "This needs the lead role."),
    "templates": (can_manage_templates, "This needs the lead role."),
    "reports": (can_view_reports, "Deployment history needs the manager or lead role."),
}


def require(user, need: str, message: str | None = None) -> None:
    """Refuse (403) unless the user may do `need`; pages and the API both answer the RuleError."""
    from .errors import RuleError

    allowed, default = NEEDS[need]
    if not allowed(user):
        raise RuleError(message or default, status=403)


def run_for(user, run_id, need: str = "view", message: str | None = None):
    """The run, if this user may see it (and do `need` on it); else RuleError 403 or 404.

    Seeing comes first, so a stranger learns nothing about which runs exist.
    """
    from .errors import RuleError
    from .selectors import run_get

    require(user, "view")
    run = run_get(run_id)
    if run is None:
        raise RuleError("No such run.", status=404)
    if need != "view":
        require(user, need, message)
    return run
