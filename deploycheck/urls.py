from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path

from checklists.views import health
from checklists.views.api import api


def _public(patterns):
    """The API authenticates with bearer tokens itself; the login redirect is for pages only."""
    for pattern in patterns:
        if hasattr(pattern, "url_patterns"):
            _public(pattern.url_patterns)
        else:
            pattern.callback = login_not_required(pattern.callback)
    return patterns


api_urls = api.urls
_public(api_urls[0])

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("api/", api_urls),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("checklists.urls")),
]

# Uncaught errors: a database outage is a 503 saying so (JSON under /api/), anything else a
# plain 500 page; neither reads the database nor shows a traceback.
handler500 = "checklists.views.health.server_error"
