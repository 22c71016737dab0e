from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ChecklistsConfig(AppConfig):
    name = "checklists"
    verbose_name = "Deployment checklists"

    def ready(self):
        from django.db.models.signals import pre_delete, pre_save

        from .permissions import sync_groups
        from .services import kernel

        # Runs, items, sections, notes, sign-offs and audit rows change only inside the kernel.
        for model in kernel.GUARDED_MODELS:
            pre_save.connect(kernel.guard_signal, sender=model, dispatch_uid=f"kernel-guard-save-{model.__name__}")
            pre_delete.connect(kernel.guard_signal, sender=model, dispatch_uid=f"kernel-guard-delete-{model.__name__}")

        # Custom permissions only exist after auth's own post_migrate handler has run.
        post_migrate.connect(sync_groups, sender=self, dispatch_uid="checklists-sync-groups")
