"""One user's email: subject, HTML, plain text and headers (`bulletin_render`)."""

import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.template import Context
from django.utils.html import strip_tags
from django.utils.text import Truncator

from bulletins.rendering.base import (
    DEFAULT_LAYOUT_MJML,
    DESCRIPTION_CHARS,
    GMAIL_CLIP_BYTES,
    SAFE_USER_TYPES,
    EmailTooLarge,
    compiled_template,
)
from bulletins.rendering.skeleton_cache import flat_context, skeletons
from recsite import tokens


@dataclass(frozen=True)
class Block:
    """One titled group of items. Each item is a dict with `item_id`, `title`, `url`, `position`
    and optionally `image_url`, `description`, `source`."""

    title: str
    items: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str
    headers: dict[str, str]
    size_bytes: int
    render_ms: float = 0.0


def _safe_user(user: dict[str, Any]) -> dict[str, Any]:
    """Only plain values reach templates: no model instance whose methods a template could call."""
    return {k: v for k, v in user.items() if isinstance(k, str) and isinstance(v, SAFE_USER_TYPES)}


def subject_render(subject_template: str, user: dict[str, Any]) -> str:
    subject = compiled_template(subject_template, html=False).render(
        Context({"user": _safe_user(user)})
    )
    return " ".join(subject.split())  # one line: a header never carries a newline


@lru_cache(maxsize=100_000)
def _description(raw: str) -> str:
    """Plain text, one line, at most DESCRIPTION_CHARS: computed once per item description,
    since a run shows the same items to many users."""
    text = strip_tags(raw) if "<" in raw else raw
    return Truncator(" ".join(text.split())).chars(DESCRIPTION_CHARS)


def _blocks_context(blocks: list[Block], delivery_id: int) -> list[dict[str, Any]]:
    context = []
    for block in blocks:
        items = []
        for item in block.items:
            items.append(
                {
                    "item_id": item["item_id"],
                    "title": str(item["title"]),
                    "position": item["position"],
                    "source": item.get("source", ""),
                    "image_url": item.get("image_url") or "",
                    "description": _description(str(item.get("description") or "")),
                    "click_url": tokens.click_url(delivery_id, item["position"], item["item_id"]),
                }
            )
        context.append({"title": block.title, "items": items})
    return context


def _text_part(
    subject: str, user: dict[str, Any], blocks: list[dict[str, Any]], unsubscribe_url: str
) -> str:
    lines = [subject, "", f"Hi {user.get('first_name') or 'there'}, picked for you this time:", ""]
    for block in blocks:
        lines += [block["title"], "-" * len(block["title"]), ""]
        for item in block["items"]:
            lines.append(f"* {item['title']}")
            if item["description"]:
                lines.append(f"  {item['description']}")
            lines += [f"  {item['click_url']}", ""]
    lines += ["--", f"Unsubscribe: {unsubscribe_url}", ""]
    return "\n".join(lines)


def unsubscribe_headers(unsubscribe_url: str, mailto: str = "") -> dict[str, str]:
    """RFC 8058 one-click unsubscribe: the HTTPS URI takes a POST with
    `List-Unsubscribe=One-Click`; a mailto is an optional fallback (RFC 2369)."""
    targets = [f"<{unsubscribe_url}>"]
    if mailto:
        token = unsubscribe_url.rstrip("/").rsplit("/", 1)[-1]
        targets.append(f"<mailto:{mailto}?subject=unsubscribe%20{token}>")
    return {
        "List-Unsubscribe": ", ".join(targets),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def bulletin_render(
    *,
    subject_template: str,
    layout_mjml: str | None,
    blocks: list[Block],
    user: dict[str, Any],
    delivery_id: int,
    unsubscribe_mailto: str | None = None,
) -> RenderedEmail:
    """One user's email. Raises `RenderError` for a broken template or MJML and
    `EmailTooLarge` when the HTML would be clipped by Gmail."""
    started = time.perf_counter()
    safe_user = _safe_user(user)
    subject = subject_render(subject_template, safe_user)
    blocks_context = _blocks_context(blocks, delivery_id)
    unsubscribe_url = tokens.unsubscribe_url(delivery_id)
    values = {
        "subject": subject,
        "user": safe_user,
        "blocks": blocks_context,
        "unsubscribe_url": unsubscribe_url,
        "open_url": tokens.open_url(delivery_id),
    }
    layout = layout_mjml or DEFAULT_LAYOUT_MJML
    template = compiled_template(layout, html=True)
    flat = flat_context(values) if skeletons.enabled else None  # before a template alters it
    html = skeletons.html(layout=layout, template=template, context=Context(values), flat=flat)
    size_bytes = len(html) if html.isascii() else len(html.encode("utf-8"))
    if size_bytes > GMAIL_CLIP_BYTES:
        raise EmailTooLarge(size_bytes)
    mailto = unsubscribe_mailto
    if mailto is None:
        mailto = getattr(settings, "UNSUBSCRIBE_MAILTO", "")
    return RenderedEmail(
        subject=subject,
        html=html,
        text=_text_part(subject, safe_user, blocks_context, unsubscribe_url),
        headers=unsubscribe_headers(unsubscribe_url, mailto),
        size_bytes=size_bytes,
        render_ms=(time.perf_counter() - started) * 1000,
    )
