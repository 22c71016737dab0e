import getpass
import os

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from checklists.choices import AccessRole
from checklists.models import SignoffRole


class Command(BaseCommand):
    help = (
        "Give a user access roles (viewer, member, lead, manager, admin) and/or sign-off roles "
        "(any other name, e.g. 'Tech Lead')."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("roles", nargs="+", metavar="ROLE")
        parser.add_argument("--create", action="store_true", help="Create the user (password from DEPLOYCHECK_PASSWORD or a prompt).")

    def handle(self, *args, username, roles, create, **options):
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None and not create:
            raise CommandError(f"no user named {username!r} (pass --create to make one)")
        with transaction.atomic():
            if user is None:
                user = User(username=username)
                user.set_password(self._password())
                user.save()
            granted = []
            for role in roles:
                role = role.strip()
                if not role:
                    continue
                if role.lower() in AccessRole.values:
                    access = role.lower()
                    user.groups.add(Group.objects.get(name=access))
                    if access == AccessRole.ADMIN:
                        user.is_staff = user.is_superuser = True
                        user.save(update_fields=["is_staff", "is_superuser"])
                    granted.append(access)
                else:
                    signoff_role = SignoffRole.objects.filter(name__iexact=role).first() or SignoffRole.objects.create(name=role)
                    signoff_role.holders.add(user)
                    granted.append(f'sign-off "{signoff_role.name}"')
        self.stdout.write(f"{username}: {', '.join(granted)}")

    def _password(self) -> str:
        password = os.environ.get("DEPLOYCHECK_PASSWORD", "")
        if password:
            return password
        try:
            first = getpass.getpass("Password: ")
            second = getpass.getpass("Password (again): ")
        except (EOFError, KeyboardInterrupt):
            raise CommandError("no password: set DEPLOYCHECK_PASSWORD or run interactively")
        if not first or first != second:
            raise CommandError("the passwords are empty or differ")
        return first
