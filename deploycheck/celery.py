import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deploycheck.settings")

app = Celery("deploycheck")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _log_context():
    # Tasks log with their name and id, as requests log with theirs (deploycheck.logs).
    from celery.signals import task_postrun, task_prerun

    from deploycheck import logs

    task_prerun.connect(logs.task_started, weak=False)
    task_postrun.connect(logs.task_finished, weak=False)


_log_context()
