from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ChecklistsConfig(AppConfig):
    name = "checklists"
    verbose_name = "Deployment checklists"

    def ready(self):
        from .permissions import sync_groups

        # Custom permissions only exist after auth's own post_migrate handler has run.
        post_migrate.connect(sync_groups, sender=self, dispatch_uid="checklists-sync-groups")
