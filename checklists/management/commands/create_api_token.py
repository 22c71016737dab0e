from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from checklists.models import ApiToken


class Command(BaseCommand):
    help = "Create an API token for a user; the token is printed once, as the last line."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="What the token is for (e.g. 'release pipeline').")

    def handle(self, *args, username, name, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}")
        if not user.is_active:
            raise CommandError(f"{username} is deactivated")
        token, raw = ApiToken.issue(user, name=name)
        self.stderr.write(f"Token {token.prefix}… for {username}; it is shown once, store it now.")
        self.stdout.write(raw)
