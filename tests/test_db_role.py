"""The app runs as a database role that does not own the audit table (README, production).

Migrations run as the owner. The app's role may read and write every table, but not UPDATE,
DELETE or TRUNCATE the audit trail: so even SQL typed by someone holding the app's password
cannot rewrite history, while the test suite (as the owner) can still flush the table.
"""

from __future__ import annotations

import contextlib
import os
import secrets

import psycopg
import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from psycopg import sql

from checklists import services
from checklists.models import AuditEvent, Run

from .conftest import test_database_url

# What the README tells an operator to run, as the owner, in the deploycheck database.
GRANTS = """
GRANT CONNECT ON DATABASE {database} TO {role};
GRANT USAGE ON SCHEMA public TO {role};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role};
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role};
REVOKE UPDATE, DELETE, TRUNCATE ON checklists_auditevent FROM {role};
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role};
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE ON SEQUENCES TO {role};
"""


def owner_connection():
    return psycopg.connect(test_database_url(), autocommit=True)


@pytest.fixture
def app_role(transactional_db):
    """A role like the README's `deploycheck_app`, named for this test run: roles belong to the
    whole server, which other databases (and other test runs) share."""
    role = f"deploycheck_app_test_{os.getpid()}"
    password = secrets.token_urlsafe(16)
    database = connection.settings_dict["NAME"]
    with owner_connection() as owner:
        owner.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        owner.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))
        for statement in filter(None, (s.strip() for s in GRANTS.split(";"))):
            owner.execute(sql.SQL(statement).format(role=sql.Identifier(role), database=sql.Identifier(database)))
    yield role, password
    with owner_connection() as owner:
        # DROP OWNED revokes its grants (tables, the database, default privileges) in this
        # database; it owns nothing else, so the role can go.
        owner.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        owner.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@contextlib.contextmanager
def app_connected_as(role: str, password: str):
    """Django's own connection, logged in as the role: the app's code runs unchanged."""
    settings_dict = connection.settings_dict
    saved = settings_dict["USER"], settings_dict["PASSWORD"]
    connection.close()
    settings_dict["USER"], settings_dict["PASSWORD"] = role, password
    try:
        yield
    finally:
        connection.close()
        settings_dict["USER"], settings_dict["PASSWORD"] = saved


def refused(statement: str, params=()) -> DatabaseError:
    with pytest.raises(DatabaseError) as caught, transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
    return caught.value


def insufficient_privilege(error: DatabaseError) -> bool:
    cause = error.__cause__
    # The append-only trigger raises the same SQLSTATE; "permission denied" is the role's refusal,
    # which comes before any trigger (and also covers TRUNCATE, which the trigger does not).
    return getattr(cause, "sqlstate", None) == "42501" and "permission denied for table checklists_auditevent" in str(cause)


def test_the_app_works_as_its_role_and_cannot_rewrite_the_audit_trail(app_role, small_template, lead, member):
    role, password = app_role

    with app_connected_as(role, password):
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user")
            assert cursor.fetchone()[0] == role

        # The app's normal writes, through its own code: start a run, tick an item, add a note.
        environment = services.environment_get_or_create("shop", "production")
        run, _ = services.run_start(version=small_template, environment=environment, version_label="1.0", actor=lead)
        item = run.items.order_by("position").first()
        services.run_item_set_state(item=item, state="done", actor=member)
        events = AuditEvent.objects.filter(run=run).count()
        assert events >= 2

        # And plain SQL: a new audit row, an UPDATE of a run row.
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO checklists_auditevent (run_id, actor_name, action, at, revision) VALUES (%s, 'verification', 'note.add', now(), 0)",
                [run.pk],
            )
            cursor.execute("UPDATE checklists_run SET status_reason = 'checked by the role test' WHERE id = %s", [run.pk])
            assert cursor.rowcount == 1

        # What the role may not do to the trail.
        assert insufficient_privilege(refused("UPDATE checklists_auditevent SET actor_name = 'mallory' WHERE run_id = %s", [run.pk]))
        assert insufficient_privilege(refused("DELETE FROM checklists_auditevent WHERE run_id = %s", [run.pk]))
        assert insufficient_privilege(refused("TRUNCATE checklists_auditevent"))
        assert insufficient_privilege(refused("UPDATE checklists_auditevent SET actor_name = 'mallory' WHERE false"))

        # A container that runs `migrate` on start still starts when there is nothing to migrate.
        call_command("migrate", verbosity=0, interactive=False)

    assert AuditEvent.objects.filter(run=run).count() == events + 1
    assert not AuditEvent.objects.filter(actor_name="mallory").exists()
    assert Run.objects.get(pk=run.pk).status_reason == "checked by the role test"


def test_tables_a_later_migration_creates_are_granted_by_default(app_role):
    role, password = app_role
    with owner_connection() as owner:
        owner.execute("CREATE TABLE dc_role_probe (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, note text)")
    try:
        with app_connected_as(role, password), connection.cursor() as cursor:
            cursor.execute("INSERT INTO dc_role_probe (note) VALUES ('new table') RETURNING id")
            assert cursor.fetchone()[0] == 1
            cursor.execute("UPDATE dc_role_probe SET note = 'changed'")
            cursor.execute("DELETE FROM dc_role_probe")
    finally:
        with owner_connection() as owner:
            owner.execute("DROP TABLE dc_role_probe")


def test_the_role_cannot_change_the_schema(app_role):
    role, password = app_role

    with app_connected_as(role, password):
        error = refused("CREATE TABLE dc_role_intruder (id int)")
        assert getattr(error.__cause__, "sqlstate", None) == "42501"
        error = refused("ALTER TABLE checklists_auditevent DISABLE TRIGGER USER")
        assert getattr(error.__cause__, "sqlstate", None) == "42501"
