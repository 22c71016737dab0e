from django.urls import path

from .views import environments, notifications, pages, runs, templates

app_name = "checklists"

urlpatterns = [
    path("", pages.dashboard, name="dashboard"),
    path("history/", pages.history, name="history"),
    path("reports/", pages.reports, name="reports"),
    path("runs/compare", pages.run_compare, name="run-compare"),
    path("runs/<int:pk>/compare-previous", pages.run_compare_previous, name="run-compare-previous"),
    path("templates/", templates.template_list, name="template-list"),
    path("templates/import", templates.template_import, name="template-import"),
    path("templates/<int:pk>/", templates.template_detail, name="template-detail"),
    path("templates/<int:pk>/edit", templates.template_edit, name="template-edit"),
    path("templates/<int:pk>/archive", templates.template_archive, name="template-archive"),
    path("templates/<int:pk>/export.md", templates.template_export, name="template-export"),
    path("environments/", environments.environment_list, name="environment-list"),
    path("environments/new", environments.environment_create, name="environment-create"),
    path("environments/<int:pk>/", environments.environment_detail, name="environment-detail"),
    path("environments/<int:pk>/variables", environments.environment_variables, name="environment-variables"),
    path("environments/<int:pk>/schedule", environments.environment_schedule, name="environment-schedule"),
    path("projects/<int:pk>/notifications", notifications.notification_list, name="notification-list"),
    path("projects/<int:pk>/notifications/new", notifications.notification_create, name="notification-create"),
    path("projects/<int:pk>/notifications/<int:receiver_pk>/test", notifications.notification_test, name="notification-test"),
    path("projects/<int:pk>/notifications/<int:receiver_pk>/delete", notifications.notification_delete, name="notification-delete"),
    path("runs/new", runs.run_start, name="run-start"),
    path("runs/<int:pk>/schedule", runs.run_schedule, name="run-schedule"),
    path("runs/<int:pk>/", runs.run_detail, name="run-detail"),
    path("runs/<int:pk>/poll", runs.run_poll, name="run-poll"),
    path("runs/<int:pk>/items/<int:item_pk>/state", runs.item_state, name="item-state"),
    path("runs/<int:pk>/items/<int:item_pk>/assign", runs.item_assign, name="item-assign"),
    path("runs/<int:pk>/items/<int:item_pk>/results", runs.item_results, name="item-results"),
    path("runs/<int:pk>/items/<int:item_pk>/menu", runs.item_menu, name="item-menu"),
    path("runs/<int:pk>/notes", runs.note_create, name="note-create"),
    path("runs/<int:pk>/sections/<int:section_pk>/skip", runs.section_skip, name="section-skip"),
    path("runs/<int:pk>/verify", runs.run_verify, name="run-verify"),
    path("runs/<int:pk>/signoffs", runs.signoff_create, name="signoff-create"),
    path("runs/<int:pk>/status", runs.run_status, name="run-status"),
    path("runs/<int:pk>/report", runs.run_report, name="run-report"),
]
