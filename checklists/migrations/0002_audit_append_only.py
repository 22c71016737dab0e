"""The audit trail refuses UPDATE and DELETE in the database itself.

Postgres gets a trigger function; SQLite (used by `make run` without a server) gets RAISE(ABORT)
triggers. Foreign keys into the trail use PROTECT, so no cascade ever trips the trigger.
"""

from django.db import migrations

PG_FORWARD = """
CREATE OR REPLACE FUNCTION checklists_auditevent_refuse() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER checklists_auditevent_append_only
    BEFORE UPDATE OR DELETE ON checklists_auditevent
    FOR EACH ROW EXECUTE FUNCTION checklists_auditevent_refuse();
"""
PG_REVERSE = """
DROP TRIGGER IF EXISTS checklists_auditevent_append_only ON checklists_auditevent;
DROP FUNCTION IF EXISTS checklists_auditevent_refuse();
"""
SQLITE_FORWARD = [
    """CREATE TRIGGER checklists_auditevent_no_update BEFORE UPDATE ON checklists_auditevent
       BEGIN SELECT RAISE(ABORT, 'audit events are append-only (UPDATE refused)'); END;""",
    """CREATE TRIGGER checklists_auditevent_no_delete BEFORE DELETE ON checklists_auditevent
       BEGIN SELECT RAISE(ABORT, 'audit events are append-only (DELETE refused)'); END;""",
]
SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS checklists_auditevent_no_update;",
    "DROP TRIGGER IF EXISTS checklists_auditevent_no_delete;",
]


def install_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_FORWARD, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement)


def remove_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_REVERSE, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_REVERSE:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("checklists", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(install_triggers, remove_triggers),
    ]
