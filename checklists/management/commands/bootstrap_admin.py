import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from checklists.choices import AccessRole


class Command(BaseCommand):
    help = "On a fresh install, create an 'admin' user with a random password and print how to log in."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username, **options):
        User = get_user_model()
        if User.objects.filter(is_superuser=True, is_active=True).exists():
            self.stdout.write(
                "Log in with your admin account (reset a password with `manage.py changepassword NAME`)."
            )
            return
        password = secrets.token_urlsafe(12)
        user = User.objects.create_superuser(username=username, password=password)
        user.groups.add(Group.objects.get(name=AccessRole.ADMIN))
        self.stdout.write(
            f"Created the first admin. Log in at /accounts/login/ as {username!r} with password {password!r}\n"
            "(shown once; change it with `manage.py changepassword admin`)."
        )
