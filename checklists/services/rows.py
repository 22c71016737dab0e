"""The hottest reads, as SQL written once per process: the kernel's two under a run's lock
(the run's row, a change's items), the items every page and poll shows, and the API token
every pipeline call starts with.

Every change to a run reads the run's row (locking it) and the items it touches, with each
item's section and assignee (what an answer names). Through the ORM, compiling those queries
took more CPU than Postgres took to run them (measured in-process, 500 calls each: 2.4 ms for
the three-table item query against 0.55 ms written out; 1.3 ms against 0.36 ms for the locked
run row), and every other change to the run waits on the lock meanwhile. The rows come back as
the ORM's own instances: the same columns, the same converters (JSON, dates), the related rows
cached as select_related would.
"""

from __future__ import annotations

import weakref

from django.contrib.auth import get_user_model
from django.db import connection, connections

from ..models import ApiToken, Run, RunItem, RunSection, VerificationResult


class _Table:
    """A model's columns in a SELECT under an alias, and its rows made back into instances."""

    def __init__(self, model, alias: str):
        self.model = model
        self.fields = model._meta.concrete_fields
        self.names = [f.attname for f in self.fields]
        self.pk_index = self.fields.index(model._meta.pk)
        self.columns = ", ".join(f"{alias}.{connection.ops.quote_name(f.column)}" for f in self.fields)
        self._converters: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def build(self, values):
        """An instance from this table's slice of a row, or None for a LEFT JOIN that found none."""
        if values[self.pk_index] is None:
            return None
        values = list(values)
        for i, col, converters in self._converters_for():
            for convert in converters:
                values[i] = convert(values[i], col, connection)
        return self.model.from_db(connection.alias, self.names, values)

    def _converters_for(self):
        """The fields' and the backend's converters, as the ORM's compiler finds them; kept per
        connection (each gunicorn thread has its own, and backend converters are bound to it)."""
        wrapper = connections[connection.alias]
        found = self._converters.get(wrapper)
        if found is None:
            table = self.model._meta.db_table
            cols = [f.get_col(table) for f in self.fields]
            found = self._converters[wrapper] = [
                (i, col, converters) for i, col in enumerate(cols)
                if (converters := wrapper.ops.get_db_converters(col) + col.get_db_converters(wrapper))
            ]
        return found


class _Reads:
    def __init__(self):
        quote = connection.ops.quote_name
        self.run = _Table(Run, "r")
        self.item, self.section, self.user = _Table(RunItem, "i"), _Table(RunSection, "s"), _Table(get_user_model(), "u")
        verification = VerificationResult._meta
        item_pk = f"i.{quote(RunItem._meta.pk.column)}"
        # Items with their section and assignee, and (for pages and polls, not the kernel) the
        # key of each one's latest verification.
        latest = (
            f"(SELECT v.{quote(verification.pk.column)} FROM {quote(verification.db_table)} v WHERE v.item_id = {item_pk} "
            f"ORDER BY v.queued_at DESC, v.{quote(verification.pk.column)} DESC LIMIT 1)"
        )
        self.items_sql = {
            with_latest: (
                f"SELECT {self.item.columns}, {self.section.columns}, {self.user.columns}{', ' + latest if with_latest else ''} "
                f"FROM {quote(RunItem._meta.db_table)} i "
                f"LEFT JOIN {quote(RunSection._meta.db_table)} s ON s.{quote(RunSection._meta.pk.column)} = i.section_id "
                f"LEFT JOIN {quote(get_user_model()._meta.db_table)} u ON u.{quote(get_user_model()._meta.pk.column)} = i.assignee_id "
                "WHERE {} ORDER BY i.position"
            )
            for with_latest in (False, True)
        }
        self.item_pk = item_pk
        self.run_sql = f"SELECT {self.run.columns} FROM {quote(Run._meta.db_table)} r WHERE r.{quote(Run._meta.pk.column)} = %s"
        self.token = _Table(ApiToken, "t")
        self.token_sql = (
            f"SELECT {self.token.columns}, {self.user.columns} FROM {quote(ApiToken._meta.db_table)} t "
            f"JOIN {quote(get_user_model()._meta.db_table)} u ON u.{quote(get_user_model()._meta.pk.column)} = t.user_id "
            "WHERE t.key_hash = %s AND t.revoked_at IS NULL AND u.is_active = %s"
        )
        self.section_field = RunItem._meta.get_field("section")
        self.assignee_field = RunItem._meta.get_field("assignee")


_reads: _Reads | None = None


def _ready() -> _Reads:
    global _reads
    if _reads is None:
        _reads = _Reads()
    return _reads


def run_locked(run_id: int, *, skip_locked: bool = False) -> Run | None:
    """The run's row, locked for the rest of the transaction (where the database can lock rows)."""
    reads = _ready()
    sql = reads.run_sql
    if connection.features.has_select_for_update:
        sql += " FOR UPDATE"
        if skip_locked and connection.features.has_select_for_update_skip_locked:
            sql += " SKIP LOCKED"
    with connection.cursor() as cursor:
        cursor.execute(sql, [run_id])
        row = cursor.fetchone()
    return reads.run.build(row) if row is not None else None


def run_items(run_id: int, *, ids=None, revision_after: int | None = None, latest: bool = True) -> list[RunItem]:
    """A run's items in checklist order (all, the chosen ones, or those changed after a
    revision) with section and assignee, and with `latest`, the key of each one's latest
    verification (`latest_verification_id`). Chosen items are found by key alone and the run
    checked here: on tables not yet analysed Postgres would otherwise walk the run's whole
    index for one."""
    reads = _ready()
    if ids is not None:
        ids = list(ids)
        if not ids:
            return []
        where, params = f"{reads.item_pk} IN ({', '.join(['%s'] * len(ids))})", ids
    else:
        where, params = "i.run_id = %s", [run_id]
    if revision_after is not None:
        where, params = where + " AND i.revision > %s", [*params, revision_after]
    with connection.cursor() as cursor:
        cursor.execute(reads.items_sql[latest].format(where), params)
        rows = cursor.fetchall()
    width_item, width_section, width_user = len(reads.item.fields), len(reads.section.fields), len(reads.user.fields)
    found = []
    for row in rows:
        item = reads.item.build(row[:width_item])
        if item.run_id != run_id:
            continue
        reads.section_field.set_cached_value(item, reads.section.build(row[width_item:width_item + width_section]))
        reads.assignee_field.set_cached_value(item, reads.user.build(row[width_item + width_section:width_item + width_section + width_user]))
        if latest:
            item.latest_verification_id = row[-1]
        found.append(item)
    return found


def token_with_user(key_hash: str) -> ApiToken | None:
    """A token not revoked, by its hash, with its user (who must be active)."""
    reads = _ready()
    with connection.cursor() as cursor:
        cursor.execute(reads.token_sql, [key_hash, True])
        row = cursor.fetchone()
    if row is None:
        return None
    token = reads.token.build(row[: len(reads.token.fields)])
    ApiToken._meta.get_field("user").set_cached_value(token, reads.user.build(row[len(reads.token.fields):]))
    return token
