"""Projects, environments and the variables that fill `{{ name }}` in checks."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from ..errors import RuleError
from ..models import Environment, EnvironmentVariable, Project


def environment_get_or_create(project_name: str, environment_name: str) -> Environment:
    """Pipelines name projects and environments; they are created on first use."""
    project_name, environment_name = project_name.strip(), environment_name.strip()
    if not project_name or not environment_name:
        raise RuleError("A run needs a project and an environment.")
    project, _ = Project.objects.get_or_create(name=project_name[:200])
    environment, _ = Environment.objects.get_or_create(project=project, name=environment_name[:100])
    return environment


@transaction.atomic
def environment_variable_set(*, environment: Environment, name: str, value: str | None, secret: bool) -> None:
    """Set a variable; a secret left blank keeps its stored value (it is never sent back to a page)."""
    name = (name or "").strip()
    variable = EnvironmentVariable.objects.filter(environment=environment, name=name).first() or EnvironmentVariable(environment=environment, name=name)
    if variable.pk and variable.secret and value in (None, "") and secret:
        return
    variable.secret = secret
    variable.value = value or ""
    try:
        variable.full_clean(exclude=["environment", "stored"])
    except ValidationError:
        raise RuleError(f"{name!r} is not a variable name: use letters, digits, - and _.") from None
    variable.save()


@transaction.atomic
def environment_variable_delete(*, environment: Environment, name: str) -> None:
    environment.variables.filter(name=name).delete()
