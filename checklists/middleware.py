from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpResponse, QueryDict
from django.shortcuts import resolve_url
from django.utils.http import url_has_allowed_host_and_scheme


class HtmxLoginRedirectMiddleware:
    """An htmx request after the session expired reloads the page into the login form.

    Left alone, the XHR would follow the redirect and swap the login page into an item,
    and the live poll would go quiet without a word. The login's `next` is the page the user
    was on (htmx's `HX-Current-URL`), not the poll or action URL that noticed: after logging
    in they are back on the run. A current URL on another origin is ignored (no open redirect).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.headers.get("HX-Request") and response.status_code == 302:
            login_url = resolve_url(settings.LOGIN_URL)
            location = response.get("Location", "")
            if location.startswith(login_url):
                redirected = HttpResponse(status=204)
                redirected["HX-Redirect"] = self.login_location(request, login_url)
                return redirected
        return response

    @staticmethod
    def login_location(request, login_url: str) -> str:
        page = HtmxLoginRedirectMiddleware.current_page(request)
        if not page:
            return login_url
        query = QueryDict(mutable=True)
        query["next"] = page
        return f"{login_url}?{query.urlencode(safe='/')}"

    @staticmethod
    def current_page(request) -> str | None:
        """The path (and query) of the page the user was on, if it is on this site."""
        current = request.headers.get("HX-Current-URL", "")
        if not current or not url_has_allowed_host_and_scheme(
            current, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return None
        parts = urlsplit(current)
        if not parts.path.startswith("/") or parts.path.startswith("//"):
            return None
        if parts.path.startswith(resolve_url(settings.LOGIN_URL)):
            return None
        return parts.path + (f"?{parts.query}" if parts.query else "")


class RuleErrorMiddleware:
    """A service's or a permission's refusal that a page view did not answer itself.

    The views answer refusals where the user acted (an item, the flash area); anything else
    becomes the plain 403/404/409 page with the message, never a 500.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code == 405 and not response.get("Content-Type", "").startswith("application/json"):
            return _method_refused(request, response.get("Allow", ""))
        return response

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


def _method_refused(request, allowed: str) -> HttpResponse:
    """A wrong method says which ones the address takes (Django's and django-ninja's own 405s
    are an empty page and an HTML line); the API answers JSON, as every API error does."""
    message = f"This address does not take {request.method}" + (f"; it takes {allowed}." if allowed else ".")
    if request.path.startswith("/api/"):
        from django.http import JsonResponse

        response = JsonResponse({"error": message}, status=405)
    else:
        response = HttpResponse(message, status=405, content_type="text/plain; charset=utf-8")
    if allowed:
        response["Allow"] = allowed
    return response


class NulRefusalMiddleware:
    """Text holding a NUL character is refused at the door with a 400.

    PostgreSQL cannot store U+0000 in text or JSON, so it would otherwise surface as a 500
    from whichever query first met it; no checklist, name or note needs one.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if self._holds_nul(request):
            message = "The request holds a NUL character (U+0000), which no text here may contain."
            if request.path.startswith("/api/"):
                from django.http import JsonResponse

                return JsonResponse({"error": message}, status=400)
            return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")
        return self.get_response(request)

    def _holds_nul(self, request) -> bool:
        if "\x00" in request.path or "%00" in request.META.get("QUERY_STRING", ""):
            return True
        if request.method not in ("POST", "PUT", "PATCH"):
            return False
        content_type = request.META.get("CONTENT_TYPE", "")
        if content_type.startswith("application/json"):
            return b"\x00" in request.body or b"\\u0000" in request.body
        if content_type.startswith("application/x-www-form-urlencoded"):
            return b"%00" in request.body
        return False
