from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import resolve_url


class HtmxLoginRedirectMiddleware:
    """An htmx request after the session expired reloads the page into the login form.

    Left alone, the XHR would follow the redirect and swap the login page into an item,
    and the live poll would go quiet without a word.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.headers.get("HX-Request") and response.status_code == 302:
            location = response.get("Location", "")
            if location.startswith(resolve_url(settings.LOGIN_URL)):
                redirected = HttpResponse(status=204)
                redirected["HX-Redirect"] = location
                return redirected
        return response
