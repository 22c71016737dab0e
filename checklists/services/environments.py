"""Projects, environments and the variables that fill `{{ name }}` in checks."""

from __future__ import annotations

import re
import unicodedata

from django.db import transaction

from ..errors import RuleError
from ..models import Environment, EnvironmentVariable, Project

NAME_MAX_LENGTH = 100
VARIABLE_MAX_BYTES = 8 * 1024
_VARIABLE_NAME = re.compile(r"[A-Za-z0-9_-]{1,100}")


def clean_name(value, what: str) -> str:
    """A project, environment or version name (CONTRACT.md): 1 to 100 characters, no control
    characters. They end up in headers, file names and reports."""
    value = str(value or "").strip()
    if not value:
        raise RuleError(f"Give the {what}.")
    if len(value) > NAME_MAX_LENGTH:
        raise RuleError(f"The {what} is {len(value)} characters long; at most {NAME_MAX_LENGTH}.")
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise RuleError(f"The {what} holds a control character (a line break, a tab): {value[:40]!r}.")
    return value


def clean_variable(name, value) -> tuple[str, str]:
    name, value = str(name or "").strip(), "" if value is None else str(value)
    if not _VARIABLE_NAME.fullmatch(name):
        raise RuleError(f"{name[:40]!r} is not a variable name: use letters, digits, - and _.")
    if len(value.encode()) > VARIABLE_MAX_BYTES:
        raise RuleError(f"The value of {name} is {len(value.encode())} bytes; a variable holds at most {VARIABLE_MAX_BYTES}.")
    return name, value


def environment_get(project_name: str, environment_name: str) -> Environment | None:
    return Environment.objects.select_related("project").filter(project__name=project_name, name=environment_name).first()


def environment_get_or_create(project_name: str, environment_name: str) -> Environment:
    """Pipelines name projects and environments; they are created on first use."""
    project_name, environment_name = clean_name(project_name, "project"), clean_name(environment_name, "environment")
    project, _ = Project.objects.get_or_create(name=project_name)
    environment, _ = Environment.objects.get_or_create(project=project, name=environment_name)
    return environment


@transaction.atomic
def environment_variable_set(
    *, environment: Environment, name: str, value: str | None, secret: bool, per_run: bool = False
) -> EnvironmentVariable:
    """Set a variable; a secret left blank keeps its stored value (it is never sent back to a page)."""
    name, _ = clean_variable(name, "")
    variable = EnvironmentVariable.objects.filter(environment=environment, name=name).first() or EnvironmentVariable(environment=environment, name=name)
    variable.per_run = per_run
    if not (variable.pk and variable.secret and value in (None, "") and secret):
        _, value = clean_variable(name, value)
        variable.secret = secret
        variable.value = value
    variable.save()
    return variable


@transaction.atomic
def environment_variable_delete(*, environment: Environment, name: str) -> None:
    environment.variables.filter(name=name).delete()
