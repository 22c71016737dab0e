from django.urls import path

from .views import pages

app_name = "checklists"

urlpatterns = [
    path("", pages.dashboard, name="dashboard"),
    path("templates/", pages.template_list, name="template-list"),
    path("templates/<int:pk>/", pages.template_detail, name="template-detail"),
    path("templates/<int:pk>/export.md", pages.template_export, name="template-export"),
    path("runs/<int:pk>/", pages.run_detail, name="run-detail"),
]
