"""`redirect`: plain HTTP answers with a redirect to HTTPS on the same host."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

from . import net
from .base import CheckContext, Outcome, check_keys, clean_url, failed, passed

KIND = "redirect"
KEYS: dict[str, str | None] = {"url": None}
REQUIRED = frozenset({"url"})
CODES = (301, 302, 307, 308)


def validate(params: dict[str, str]) -> dict[str, str]:
    clean = check_keys(KIND, params, KEYS, REQUIRED)
    clean["url"] = clean_url("url", clean["url"], schemes=("http",))
    return clean


def run(params: dict[str, str], ctx: CheckContext) -> Outcome:
    url = params["url"]
    answer = net.fetch(url, ctx.deadline, follow=False, read_body=False)
    raw_location = answer.headers.get("Location")
    location = urljoin(url, raw_location) if raw_location else None
    evidence = {"status_code": answer.status, "location": location}
    if answer.status not in CODES:
        return failed(f"{url} answered {answer.status}, not a redirect (301, 302, 307 or 308)", **evidence)
    if not location:
        return failed(f"{url} answered {answer.status} without a Location header", **evidence)
    target, source = urlsplit(location), urlsplit(url)
    if target.scheme.lower() != "https":
        return failed(f"{url} redirects to {location}, which is not https", **evidence)
    if (target.hostname or "").rstrip(".") != (source.hostname or "").rstrip("."):
        return failed(f"{url} redirects to another host: {location}", **evidence)
    return passed(f"{url} redirects ({answer.status}) to {location}", **evidence)
