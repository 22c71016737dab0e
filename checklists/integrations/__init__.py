"""Receivers outside deploycheck, one module each behind one interface (as healthchecks'
hc/integrations/<kind>/): what a module owes for a run's changes it queues in the outbox from
its announcer, and its sender delivers one outbox message.

  ANNOUNCERS  called by the kernel (through services.outbox.run_events_announce) with a run and
              the audit events a change wrote, inside that change's transaction; each returns
              at once for events it does not care about.
  SENDERS     outbox kind -> callable(message): returns when delivered; raises
              services.outbox.DeliveryRefused when the receiver refuses for good, anything
              else to be retried with backoff.
"""

from __future__ import annotations

from . import github, notify

ANNOUNCERS = (github.on_run_events, notify.on_run_events)
SENDERS = {github.REVIEW: github.review_send, **notify.SENDERS}
