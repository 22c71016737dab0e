"""Every change, one module a concept; every change to a run passes through kernel.run_change.

Callers use `services.<name>`: the names below are the public services.
"""

from .environments import environment_get, environment_get_or_create, environment_variable_delete, environment_variable_set
from .kernel import VERIFICATION_ACTOR, actor_name
from .runs import (
    NOTE_MAX_LENGTH,
    UNCHANGED,
    VariableInput,
    note_add,
    run_import,
    run_item_assign,
    run_item_change,
    run_item_set_state,
    run_set_status,
    run_start,
    section_skip,
    user_by_name,
)
from .signoffs import signoff_record
from .templates import (
    document_variables,
    outline_document,
    suggested_checks_attach,
    template_archive,
    template_export,
    template_import,
    template_version_create,
    version_document,
)
from .verifications import (
    environment_latest_live_run,
    schedule_get,
    schedule_set,
    verification_abandon,
    verification_apply,
    verification_claim,
    verification_enqueue,
    verification_execute,
    verification_record,
    verification_request,
    verification_scheduled,
    verification_sweep,
)

__all__ = [
    "NOTE_MAX_LENGTH",
    "VERIFICATION_ACTOR",
    "VariableInput",
    "actor_name",
    "document_variables",
    "environment_get",
    "environment_latest_live_run",
    "environment_get_or_create",
    "environment_variable_delete",
    "environment_variable_set",
    "note_add",
    "outline_document",
    "run_import",
    "UNCHANGED",
    "run_item_assign",
    "run_item_change",
    "run_item_set_state",
    "run_set_status",
    "run_start",
    "schedule_get",
    "schedule_set",
    "section_skip",
    "signoff_record",
    "suggested_checks_attach",
    "template_archive",
    "template_export",
    "template_import",
    "template_version_create",
    "user_by_name",
    "version_document",
    "verification_abandon",
    "verification_apply",
    "verification_claim",
    "verification_enqueue",
    "verification_execute",
    "verification_record",
    "verification_request",
    "verification_scheduled",
    "verification_sweep",
]
