from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.urls import reverse
from django.utils.html import format_html

from . import models


class DeactivateOnlyUserAdmin(UserAdmin):
    """People are deactivated, never deleted: the audit trail keeps their names and links."""

    def has_delete_permission(self, request, obj=None):
        return False


admin.site.unregister(get_user_model())
admin.site.register(get_user_model(), DeactivateOnlyUserAdmin)


class ForLookingOnly:
    """Runs and everything on them change through the run page and the API only (the kernel):
    the admin would be a second path to going live with no sign-off and no audit event."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class EnvironmentVariableInline(admin.TabularInline):
    model = models.EnvironmentVariable
    extra = 0
    fields = ["name", "secret", "shown_value"]
    readonly_fields = ["shown_value"]

    @admin.display(description="value")
    def shown_value(self, obj):
        # Secrets are never shown again once entered.
        return obj.display_value


@admin.register(models.Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]


@admin.register(models.Environment)
class EnvironmentAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "created_at"]
    list_filter = ["project"]
    inlines = [EnvironmentVariableInline]


@admin.register(models.EnvironmentVariable)
class EnvironmentVariableAdmin(admin.ModelAdmin):
    list_display = ["name", "environment", "secret", "shown_value"]
    list_filter = ["secret"]
    exclude = ["stored"]
    readonly_fields = ["shown_value"]

    @admin.display(description="value")
    def shown_value(self, obj):
        return obj.display_value


class TemplateVersionInline(ReadOnlyInline):
    model = models.TemplateVersion
    fields = ["number", "name", "item_count", "section_count", "check_count", "created_at", "created_by"]
    readonly_fields = fields


@admin.register(models.ChecklistTemplate)
class ChecklistTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at", "archived_at"]
    search_fields = ["name", "slug"]
    list_filter = ["archived_at"]
    inlines = [TemplateVersionInline]


@admin.register(models.TemplateVersion)
class TemplateVersionAdmin(admin.ModelAdmin):
    """Versions are immutable: editing happens by saving a new version in the editor."""

    list_display = ["template", "number", "item_count", "section_count", "check_count", "created_at"]
    list_select_related = ["template"]

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(models.TemplateSection)
class TemplateSectionAdmin(admin.ModelAdmin):
    list_display = ["title", "version", "level", "position"]
    list_select_related = ["version"]

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(models.TemplateItem)
class TemplateItemAdmin(admin.ModelAdmin):
    list_display = ["text", "version", "depth", "check_kind"]
    list_select_related = ["version"]

    def has_change_permission(self, request, obj=None):
        return False


class RunVariableInline(ReadOnlyInline):
    model = models.RunVariable
    fields = ["name", "secret", "shown_value"]
    readonly_fields = fields

    @admin.display(description="value")
    def shown_value(self, obj):
        return obj.display_value


@admin.register(models.Run)
class RunAdmin(ForLookingOnly, admin.ModelAdmin):
    list_display = ["__str__", "template_name", "status", "started_by", "started_at", "completed_at"]
    list_filter = ["status", "project", "environment"]
    list_select_related = ["project", "environment", "started_by"]
    search_fields = ["version_label", "template_name", "project__name"]
    inlines = [RunVariableInline]


@admin.register(models.RunSection)
class RunSectionAdmin(ForLookingOnly, admin.ModelAdmin):
    list_display = ["title", "run", "level"]
    list_select_related = ["run__project", "run__environment"]


@admin.register(models.RunItem)
class RunItemAdmin(ForLookingOnly, admin.ModelAdmin):
    list_display = ["text", "run", "state", "assignee", "changed_by_name", "changed_at"]
    list_filter = ["state"]
    list_select_related = ["run__project", "run__environment", "assignee"]


@admin.register(models.Note)
class NoteAdmin(ForLookingOnly, admin.ModelAdmin):
    list_display = ["run", "item", "author", "created_at"]
    list_select_related = ["run__project", "run__environment", "item", "author"]


@admin.register(models.SignoffRole)
class SignoffRoleAdmin(admin.ModelAdmin):
    list_display = ["name"]
    filter_horizontal = ["holders"]


@admin.register(models.Signoff)
class SignoffAdmin(ForLookingOnly, admin.ModelAdmin):
    list_display = ["run", "role", "decision", "user", "at", "stale_at"]
    list_select_related = ["run__project", "run__environment", "user"]


@admin.register(models.VerificationResult)
class VerificationResultAdmin(admin.ModelAdmin):
    list_display = ["item", "kind", "status", "duration_ms", "queued_at", "finished_at"]
    list_filter = ["status", "kind"]
    list_select_related = ["item"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(models.AuditEvent)
class AuditEventAdmin(ForLookingOnly, admin.ModelAdmin):
    """Read-only here, and the database refuses changes too."""

    list_display = ["at", "actor_name", "action", "run", "item"]
    list_filter = ["action"]
    list_select_related = ["run__project", "run__environment", "item"]
    search_fields = ["actor_name", "action"]


@admin.register(models.ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["prefix", "user", "name", "created_at", "last_used_at", "revoked_at"]
    fields = ["user", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["user", "prefix", "created_at", "last_used_at"]

    def has_add_permission(self, request):
        # Tokens are made with `manage.py create_api_token`, which shows the token once.
        return False


@admin.register(models.OutboxMessage)
class OutboxMessageAdmin(ForLookingOnly, admin.ModelAdmin):
    """What deploycheck owes outside and how its delivery went; the worker sends it."""

    list_display = ["created_at", "kind", "target", "run", "attempts", "next_attempt_at", "delivered_at", "failed_at", "last_error"]
    list_filter = ["kind"]
    search_fields = ["target", "subject"]


@admin.register(models.GithubDeploymentRequest)
class GithubDeploymentRequestAdmin(ForLookingOnly, admin.ModelAdmin):
    list_display = ["received_at", "repository", "environment", "sha", "ref", "run", "reports", "answer", "answered_at"]
    search_fields = ["repository", "sha", "ref"]


@admin.register(models.NotificationReceiver)
class NotificationReceiverAdmin(admin.ModelAdmin):
    """Receivers are managed on each project's Notifications page (or the API), where a JSON
    webhook's secret is generated and shown once; here they are listed, and can be removed."""

    list_display = ("project", "kind", "target", "created_at", "page")
    list_filter = ("kind", "project")
    readonly_fields = ("project", "kind", "target", "events", "created_by", "created_at")
    exclude = ("secret_stored",)

    def has_add_permission(self, request):
        return False

    def view_on_site(self, obj):
        return reverse("checklists:notification-list", args=[obj.project_id])

    @admin.display(description="Notifications page")
    def page(self, obj):
        return format_html('<a href="{}">{}</a>', self.view_on_site(obj), obj.project.name)
