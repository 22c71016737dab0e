"""Indexes for the managers' pages (checklists/history.py), so that history and reports stay
fast at 10,000 runs (benchmarks/history.py measures them).

- Blocked and skipped items: a partial index of only those rows (a few in a hundred), holding
  the run and the reason, so "items most often blocked or skipped" reads the index alone
  instead of every item of every run.
- Items that carry a check, with their text: "checks failing most" finds each failed result's
  item there, not in the items table.
- Failed verification results, with their item, kind and run (a small share of all results).
- Items by run and the person who last changed them: the history's person filter ("ticked")
  probes it once per run instead of reading the run's items.

Partial indexes hold only the rows their condition picks, so a tick that neither blocks, skips
nor touches a checked item writes nothing to them. Raw SQL rather than the models' Meta: they
serve these reads only, and use PostgreSQL's INCLUDE (covering) clause; SQLite (`make run`) gets
the same indexes without it.
"""

from django.db import migrations

INDEXES = [
    ("runitem_blocked_skipped", "checklists_runitem (text, state)", "(run_id, reason)", "WHERE state IN ('blocked', 'skipped')"),
    ("runitem_checked", "checklists_runitem (id)", "(text, run_id)", "WHERE check_kind <> ''"),
    ("vresult_failing", "checklists_verificationresult (status)", "(item_id, kind, run_id)", "WHERE status IN ('failed', 'error')"),
    ("runitem_run_changed_by", "checklists_runitem (run_id, changed_by_id)", "", ""),
]


def create(apps, schema_editor):
    postgres = schema_editor.connection.vendor == "postgresql"
    for name, target, include, where in INDEXES:
        covering = f"INCLUDE {include}" if postgres and include else ""
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {target} {covering} {where}")


def drop(apps, schema_editor):
    for name, *_ in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("checklists", "0006_outbox_github")]

    operations = [migrations.RunPython(create, drop)]
