from django.core.management.base import BaseCommand, CommandError

from checklists import selectors, services


class Command(BaseCommand):
    help = "Print a template as Markdown (an all-digit value is an id, else a slug)."

    def add_arguments(self, parser):
        parser.add_argument("template")
        parser.add_argument("--template-version", dest="version", type=int, help="A version number (default: the latest).")

    def handle(self, *args, template, version, **options):
        found = selectors.template_get(template)
        if found is None:
            raise CommandError(f"no template {template!r}")
        chosen = found.versions.filter(number=version).first() if version else found.latest_version()
        if chosen is None:
            raise CommandError(f"template {found.slug!r} has no version {version}")
        self.stdout.write(services.template_export(chosen), ending="")
