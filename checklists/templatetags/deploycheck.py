from django import template
from django.utils.safestring import mark_safe

from checklists import rendering

register = template.Library()


@register.filter
def markdown(text: str) -> str:
    return mark_safe(rendering.markdown_block(text))


@register.filter
def markdown_inline(text: str) -> str:
    return mark_safe(rendering.markdown_inline(text))
