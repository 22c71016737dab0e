from django.core.management.base import BaseCommand, CommandError

from checklists import reports, selectors


class Command(BaseCommand):
    help = "Print a run's report as Markdown, JSON or CSV."

    def add_arguments(self, parser):
        parser.add_argument("run", type=int)
        parser.add_argument("--format", choices=sorted(reports.FORMATS), default="md")

    def handle(self, *args, run, format, **options):
        found = selectors.run_get(run)
        if found is None:
            raise CommandError(f"no run {run}")
        _, render = reports.FORMATS[format]
        self.stdout.write(render(found), ending="")
