import secrets

from django import template
from django.core.cache import caches
from django.middleware.csrf import get_token
from django.template.loader import get_template
from django.utils import timezone, translation
from django.utils.safestring import mark_safe

from checklists import rendering

register = template.Library()


@register.filter
def markdown(text: str) -> str:
    return mark_safe(rendering.markdown_block(text))


@register.filter
def markdown_inline(text: str) -> str:
    return mark_safe(rendering.markdown_inline(text))


# --- The run page's item rows, rendered once per item revision --------------------------------
#
# Every open run page polls; each item that moved is sent to every page that has not seen it, so
# twenty people on one launch would render the same row twenty times. A row depends only on the
# item at its revision (the kernel bumps it on every change to the item, its verdict and its
# notes), the run's status, what the viewer may do, who can be assigned, and the timezone and
# language it is shown in: that is the key. The CSRF token is the one per-viewer part: the cached
# row holds a placeholder that each answer replaces with its own viewer's token.

_CSRF_PLACEHOLDER = f"csrf-{secrets.token_hex(16)}"
_ROW_TEMPLATE = "checklists/run_detail.html#item"


def _viewer_key(context) -> str:
    """Who can be assigned, and the timezone and language the row is shown in: once per answer."""
    memo = context.render_context
    if "viewer_key" not in memo:
        people = hash(tuple(p.username for p in context.get("people") or ()))
        memo["viewer_key"] = f"{people}:{timezone.get_current_timezone_name()}:{translation.get_language()}"
    return memo["viewer_key"]


def _row_key(context, item) -> str:
    run, can = context["run"], context.get("can") or {}
    verification = getattr(item, "latest_verification", None)
    notes = getattr(item, "note_list", None) or ()
    parts = (
        item.pk, item.revision, run.pk, run.status, bool(can.get("work")), bool(context.get("oob")),
        getattr(verification, "pk", None), getattr(verification, "status", None),
        len(notes), notes[-1].pk if notes else None,
        _viewer_key(context),
    )
    return "item-row:" + ":".join(map(str, parts))


def _fragment(key: str, template_name: str, context: dict) -> str:
    """A fragment from the process's `fragments` cache, rendered and kept on a miss."""
    fragments = caches["fragments"]
    html = fragments.get(key)
    if html is None:
        html = get_template(template_name).render(context)
        fragments.set(key, html)
    return html


@register.simple_tag(takes_context=True)
def item_row(context) -> str:
    item = context["item"]
    row_context = {name: context.get(name) for name in ("item", "run", "can", "people", "oob")}
    html = _fragment(_row_key(context, item), _ROW_TEMPLATE, {**row_context, "csrf_token": _CSRF_PLACEHOLDER})
    memo = context.render_context
    if "csrf_token" not in memo:
        request = context.get("request")
        memo["csrf_token"] = get_token(request) if request is not None else ""
    return mark_safe(html.replace(_CSRF_PLACEHOLDER, memo["csrf_token"]))


# --- The activity feed's lines, rendered once per event ------------------------------------------
#
# An audit event never changes, so its line depends only on the event and the timezone and
# language it is shown in; during a busy launch every poll of every page sends the feed.

_EVENT_TEMPLATE = "checklists/run_detail.html#activity-event"


@register.simple_tag(takes_context=True)
def activity_event(context) -> str:
    event = context["event"]
    # The run and revision too: a restored or test database may give an id to another event.
    key = f"activity-event:{event.pk}:{event.run_id}:{event.revision}:{timezone.get_current_timezone_name()}:{translation.get_language()}"
    return mark_safe(_fragment(key, _EVENT_TEMPLATE, {"event": event}))
