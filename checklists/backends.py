"""Authentication backend: Django's ModelBackend, with a user's permissions read in one query.

Every request asks what its user may do (a tick, a poll, a page). ModelBackend reads the
user's own permissions and their groups' permissions in two ORM queries, each compiled anew
per request; one fixed statement reads both. Still read per request, never kept across
requests: a role taken away applies on the very next request.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection


def _permissions_sql() -> str:
    """The user's own permissions and their groups', each reached from the user's id through
    the link tables' indexes (never a pass over all permissions)."""
    user_model = get_user_model()
    user_perms = user_model.user_permissions.through._meta
    group_perms = Group.permissions.through._meta
    user_groups = user_model.groups.through._meta
    perm, ct = Permission._meta.db_table, ContentType._meta.db_table
    q = connection.ops.quote_name

    def column(meta, field: str) -> str:
        return q(meta.get_field(field).column)

    named = f"JOIN {q(perm)} p ON p.{q('id')} = {{link}} JOIN {q(ct)} ct ON ct.{q('id')} = p.{q('content_type_id')}"
    return (
        f"SELECT ct.{q('app_label')}, p.{q('codename')} FROM {q(user_perms.db_table)} up "
        + named.format(link=f"up.{column(user_perms, 'permission')}")
        + f" WHERE up.{column(user_perms, 'user')} = %s"
        f" UNION SELECT ct.{q('app_label')}, p.{q('codename')} FROM {q(user_groups.db_table)} ug "
        f"JOIN {q(group_perms.db_table)} gp ON gp.{column(group_perms, 'group')} = ug.{column(user_groups, 'group')} "
        + named.format(link=f"gp.{column(group_perms, 'permission')}")
        + f" WHERE ug.{column(user_groups, 'user')} = %s"
    )


class PermissionsInOneQueryBackend(ModelBackend):
    _sql: str | None = None

    def get_all_permissions(self, user_obj, obj=None):
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            if user_obj.is_superuser:
                rows = Permission.objects.values_list("content_type__app_label", "codename")
            else:
                if PermissionsInOneQueryBackend._sql is None:
                    PermissionsInOneQueryBackend._sql = _permissions_sql()
                with connection.cursor() as cursor:
                    cursor.execute(self._sql, [user_obj.pk, user_obj.pk])
                    rows = cursor.fetchall()
            user_obj._perm_cache = {f"{app}.{codename}" for app, codename in rows}
        return user_obj._perm_cache
