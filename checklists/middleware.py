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


class RuleErrorMiddleware:
    """A service's or a permission's refusal that a page view did not answer itself.

    The views answer refusals where the user acted (an item, the flash area); anything else
    becomes the plain 403/404/409 page with the message, never a 500.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        from django.core.exceptions import PermissionDenied
        from django.http import Http404

        from .errors import RuleError

        if not isinstance(exception, RuleError) or request.path.startswith("/api/"):
            return None
        if exception.status == 403:
            raise PermissionDenied(exception.message)
        if exception.status == 404:
            raise Http404(exception.message)
        return HttpResponse(exception.message, status=exception.status, content_type="text/plain; charset=utf-8")
