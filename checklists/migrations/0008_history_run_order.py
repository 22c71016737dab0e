"""The history's default order, newest first: with this index PostgreSQL reads the first page
of runs straight from it instead of sorting all of them (see migration 0007 for why these
indexes are SQL of their own)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("checklists", "0007_history_indexes")]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS run_started_newest ON checklists_run (started_at DESC, id DESC)",
            "DROP INDEX IF EXISTS run_started_newest",
        )
    ]
