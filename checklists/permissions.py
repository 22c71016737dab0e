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
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return user.signoff_roles.filter(name__iexact=role).exists()


def can_sign(user, role: str) -> bool:
    return holds_role(user, role) if role else can_lead(user)
