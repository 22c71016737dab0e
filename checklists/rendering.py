"""User text (item text, bodies, notes) rendered from Markdown and sanitized with nh3."""

from __future__ import annotations

import functools

import nh3
from markdown_it import MarkdownIt

# html=False: raw HTML in a note is shown as text, never run; nh3 then cleans what Markdown made.
_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "breaks": True}).enable(["table", "strikethrough"])

ALLOWED_TAGS = {
    "p", "br", "strong", "em", "del", "s", "code", "pre", "blockquote", "ul", "ol", "li", "a",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "table", "thead", "tbody", "tr", "th", "td",
}


def _clean(html: str) -> str:
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes={"a": {"href", "title"}, "code": {"class"}, "th": {"align"}, "td": {"align"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


@functools.lru_cache(maxsize=4096)
def markdown_block(text: str) -> str:
    return _clean(_md.render(text or ""))


@functools.lru_cache(maxsize=8192)
def markdown_inline(text: str) -> str:
    # HTML comments (annotations) never reach here: the parser took them out of the text.
    return _clean(_md.renderInline(text or ""))
