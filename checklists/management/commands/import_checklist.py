from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from checklists import markdown as md
from checklists import services
from checklists.models import RuleError


class Command(BaseCommand):
    help = "Import a Markdown checklist as a new template (or, with --as-run, as a past run)."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--name", help="Template name when the file has no `# ` heading.")
        parser.add_argument("--as-run", action="store_true", help="Import a filled-in checklist as a past run.")
        parser.add_argument("--project")
        parser.add_argument("--environment")
        parser.add_argument("--run-version", dest="version_label", default="imported", help="Version label of the imported run.")
        parser.add_argument("--user", help="Who the import is recorded as (default: the first superuser).")
        parser.add_argument(
            "--suggest-checks", action="store_true",
            help="Attach to each item without a check the check the suggester finds for it (as the import preview does).",
        )

    def handle(self, *args, file, name, as_run, project, environment, version_label, user, suggest_checks, **options):
        path = Path(file)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"{file}: cannot read ({exc.strerror or exc})")
        try:
            document = md.parse_bytes(data)
        except md.ParseError as exc:
            raise CommandError(f"{file}: {exc}")
        # A file without a heading is named by --name, else by its file name.
        name = name or document.name or path.stem
        actor = self._actor(user)
        suggested = services.suggested_checks_attach(document) if suggest_checks and not as_run else 0
        try:
            if as_run:
                if not project or not environment:
                    raise CommandError("--as-run needs --project and --environment")
                if actor is None:
                    raise CommandError("--as-run needs a user to record the run as: pass --user or create a superuser")
                environment_obj = services.environment_get_or_create(project, environment)
                run = services.run_import(
                    document, environment=environment_obj, version_label=version_label, actor=actor,
                    name=name, source=md.decode(data),
                )
                version = run.template_version
                self.stdout.write(
                    f"run {run.pk}: {version.item_count} items, {version.section_count} sections, "
                    f"{version.check_count} checks ({run.project.name} / {run.environment.name})"
                )
                return
            version = services.template_import(document, name=name, actor=actor, source=md.decode(data))
        except RuleError as exc:
            raise CommandError(exc.message)
        self.stdout.write(
            f"template {version.template.pk} ({version.template.slug}) v{version.number}: "
            f"{version.item_count} items, {version.section_count} sections, {version.check_count} checks"
            + (f" ({suggested} suggested; they need {', '.join(services.document_variables(document))})" if suggested else "")
            + (f", sign-off roles: {', '.join(_role(r, version.role_counts) for r in version.required_roles)}" if version.required_roles else "")
            + (", four eyes" if version.four_eyes else "")
        )

    def _actor(self, username):
        from django.contrib.auth import get_user_model

        User = get_user_model()
        if username:
            user = User.objects.filter(username=username).first()
            if user is None:
                raise CommandError(f"no user named {username!r}")
            return user
        return User.objects.filter(is_superuser=True, is_active=True).order_by("pk").first()


def _role(role: str, counts: dict) -> str:
    return f"{role} ({counts[role]})" if counts.get(role, 1) > 1 else role
