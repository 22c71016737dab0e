import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deploycheck.settings")

app = Celery("deploycheck")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def publisher():
    """A fresh broker connection for publishing from a request, which fails at once when the
    broker is down (about 0.1 s) instead of after kombu's reconnection attempts (2 s): the
    caller answers 503 (Verify) or leaves the message to the outbox's sweep, and the change
    that caused it is not held up. Fresh each time: a pooled one may still point at a broker
    that went away. Workers keep their own reconnect-and-wait behaviour."""
    return app.connection_for_write(transport_options={**app.conf.broker_transport_options, "max_retries": 0})


def _log_context():
    # Tasks log with their name and id, as requests log with theirs (deploycheck.logs).
    from celery.signals import task_postrun, task_prerun

    from deploycheck import logs

    task_prerun.connect(logs.task_started, weak=False)
    task_postrun.connect(logs.task_finished, weak=False)


_log_context()
