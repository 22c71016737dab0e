from pathlib import Path

from django.core.management.base import BaseCommand
from django.db import transaction

from checklists import markdown as md
from checklists import services
from checklists.models import ChecklistTemplate

STARTER_DIR = Path(__file__).resolve().parents[2] / "starter"


class Command(BaseCommand):
    help = "Load the starter templates that ship with deploycheck (skips those already loaded)."

    def handle(self, *args, **options):
        for path in sorted(STARTER_DIR.glob("*.md")):
            if ChecklistTemplate.objects.filter(slug=path.stem).exists():
                self.stdout.write(f"{path.stem}: already loaded")
                continue
            with transaction.atomic():
                source = path.read_text(encoding="utf-8")
                version = services.template_import(md.parse(source), source=source)
                template = version.template
                if template.slug != path.stem:
                    template.slug = path.stem
                    template.save(update_fields=["slug"])
            self.stdout.write(f"{path.stem}: loaded, {version.item_count} items, {version.check_count} checks")
