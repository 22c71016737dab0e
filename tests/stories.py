"""Steps of a launch done through the real services, for tests that need a run in some state.

Nothing here writes a row itself: a run goes live by sign-off, a check's verdict arrives the
way a worker's does (requested, claimed, finished, applied by the kernel), minus the broker
and the network.
"""

import os

from django.contrib.auth import get_user_model
from django.core.management import call_command

from checklists import services

FINISHED = ("passed", "failed", "error")


def verdict(item, status: str, message: str = ""):
    [result] = services.verification_request(run=item.run, actor=None, item_ids=[item.pk])
    if status != "queued":
        services.verification_claim([result.pk])
    if status in FINISHED:
        services.verification_record(result_id=result.pk, status=status, message=message or f"check {status}")
    result.refresh_from_db()
    return result


def lead_of(run, username: str = "gil"):
    """A lead holding every sign-off role the run needs."""
    os.environ.setdefault("DEPLOYCHECK_PASSWORD", "correct horse battery staple")
    call_command("grant", username, "lead", *run.required_roles, "--create", stdout=open(os.devnull, "w"))
    return get_user_model().objects.get(username=username)


def go_live(run, username: str = "gil"):
    """A lead holding every role of the run signs it off, past the gate if need be."""
    signer = lead_of(run, username)
    for role in run.required_roles or [None]:
        services.signoff_record(run=run, actor=signer, decision="approve", role=role, override_reason="launch window")
    run.refresh_from_db()
    assert run.status == "completed", run.status
    return run
