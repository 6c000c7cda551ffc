"""Per-user bulletin rendering: subject, MJML -> HTML, a plain-text part and the RFC 8058 headers.

`bulletin_render` is pure apart from reading settings (`SECRET_KEY` for the tokens,
`PUBLIC_BASE_URL`, optional `UNSUBSCRIBE_MAILTO`): it takes the blocks of recommended items and
returns a `RenderedEmail`, which becomes an `integrations.platforms.Message`. Every item link goes
through the tracked click URL `/r/<token>`; the raw item URL never appears in the email.

A layout is MJML with Django template syntax, rendered with autoescaping (so item titles with `<`,
`&` or quotes stay text), then compiled by mjml-python. Its context:
`subject`, `user` (plain values only), `blocks` (each `title` and `items`; each item `title`,
`click_url`, `image_url`, `description`, `position`, `source`), `unsubscribe_url`, `open_url`.
"""

import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.template import Context, Engine, Template, TemplateSyntaxError
from django.utils.html import strip_tags
from django.utils.text import Truncator
from mjml import mjml2html

from bulletins import tokens

GMAIL_CLIP_BYTES = 102 * 1024
DESCRIPTION_CHARS = 160
SAFE_USER_TYPES = (str, int, float, bool, type(None))

DEFAULT_LAYOUT_MJML = """<mjml>
  <mj-head>
    <mj-title>{{ subject }}</mj-title>
    <mj-preview>{% for block in blocks %}{{ block.title }}{% if not forloop.last %} · \
{% endif %}{% endfor %}</mj-preview>
    <mj-attributes>
      <mj-all font-family="Helvetica, Arial, sans-serif" />
      <mj-text font-size="15px" line-height="1.4" color="#222222" />
    </mj-attributes>
  </mj-head>
  <mj-body background-color="#f4f4f4">
    <mj-section background-color="#ffffff" padding="20px 0 8px">
      <mj-column>
        <mj-text font-size="22px" font-weight="bold">{{ subject }}</mj-text>
        <mj-text>Hi {{ user.first_name|default:"there" }}, picked for you this time:</mj-text>
      </mj-column>
    </mj-section>
{% for block in blocks %}
    <mj-section background-color="#ffffff" padding="8px 0">
      <mj-column>
        <mj-text font-size="18px" font-weight="bold">{{ block.title }}</mj-text>
      </mj-column>
    </mj-section>
{% for item in block.items %}
    <mj-section background-color="#ffffff" padding="0 0 12px">
{% if item.image_url %}
      <mj-column width="30%">
        <mj-image src="{{ item.image_url }}" alt="{{ item.title }}" href="{{ item.click_url }}"
                  width="160px" padding="4px 12px" />
      </mj-column>
      <mj-column width="70%">
{% else %}
      <mj-column>
{% endif %}
        <mj-text padding="4px 12px" font-weight="bold">\
<a href="{{ item.click_url }}" style="color:#1a5dab;text-decoration:none">{{ item.title }}</a>\
</mj-text>
{% if item.description %}
        <mj-text padding="0 12px" color="#555555">{{ item.description }}</mj-text>
{% endif %}
      </mj-column>
    </mj-section>
{% endfor %}
{% endfor %}
    <mj-section padding="16px 0">
      <mj-column>
        <mj-text font-size="12px" color="#777777" align="center">
          You receive this email because you subscribed to it.
          <a href="{{ unsubscribe_url }}" style="color:#777777">Unsubscribe</a>
        </mj-text>
        <mj-raw><img src="{{ open_url }}" width="1" height="1" alt="" \
style="display:block;border:0;width:1px;height:1px" /></mj-raw>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>
"""


class RenderError(ValueError):
    """A bulletin that cannot be rendered: bad subject/layout template or invalid MJML."""


class EmailTooLarge(RenderError):
    """The HTML is above Gmail's clipping limit, which would hide the unsubscribe footer."""

    def __init__(self, size_bytes: int) -> None:
        self.size_bytes = size_bytes
        super().__init__(
            f"rendered email is {size_bytes / 1024:.1f} KB; Gmail clips above "
            f"{GMAIL_CLIP_BYTES // 1024} KB and hides the footer with the unsubscribe link: "
            "show fewer items or shorten descriptions"
        )


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


# Own engines: no loaders, no context processors, nothing from the request or the DB leaks in.
_html_engine = Engine(autoescape=True)
_text_engine = Engine(autoescape=False)


@lru_cache(maxsize=64)
def _template(source: str, *, html: bool) -> Template:
    engine = _html_engine if html else _text_engine
    try:
        return engine.from_string(source)
    except TemplateSyntaxError as exc:
        what = "layout" if html else "subject template"
        raise RenderError(f"invalid {what}: {exc}") from exc


def _safe_user(user: dict[str, Any]) -> dict[str, Any]:
    """Only plain values reach templates: no model instance whose methods a template could call."""
    return {k: v for k, v in user.items() if isinstance(k, str) and isinstance(v, SAFE_USER_TYPES)}


def subject_render(subject_template: str, user: dict[str, Any]) -> str:
    subject = _template(subject_template, html=False).render(Context({"user": _safe_user(user)}))
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


def mjml_compile(source: str) -> str:
    try:
        return mjml2html(source)
    except Exception as exc:  # mjml-python raises ValueError/RuntimeError with a parser message
        raise RenderError(f"invalid MJML in the layout: {exc}") from exc


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
    context = Context(
        {
            "subject": subject,
            "user": safe_user,
            "blocks": blocks_context,
            "unsubscribe_url": unsubscribe_url,
            "open_url": tokens.open_url(delivery_id),
        }
    )
    mjml_source = _template(layout_mjml or DEFAULT_LAYOUT_MJML, html=True).render(context)
    html = mjml_compile(mjml_source)
    size_bytes = len(html.encode("utf-8"))
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
