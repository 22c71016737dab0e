"""`deploycheck`: the console script, `python manage.py` without knowing where manage.py is.

`deploycheck grant alice lead --create`, `deploycheck import_checklist FILE`, ... With nothing set
it finds the same var/ (SQLite database, filesystem broker, var/secret_key) as `make run`.
"""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deploycheck.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["deploycheck", *sys.argv[1:]])


if __name__ == "__main__":
    main()
