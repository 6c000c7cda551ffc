"""What every part of rendering shares: the limits, the default layout, the errors, the
template engines and the MJML compiler."""

from functools import lru_cache

from django.template import Engine, Template, TemplateSyntaxError
from mjml import mjml2html

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


# Own engines: no loaders, no context processors, nothing from the request or the DB leaks in.
_html_engine = Engine(autoescape=True)
_text_engine = Engine(autoescape=False)


@lru_cache(maxsize=64)
def compiled_template(source: str, *, html: bool) -> Template:
    """The Django template of `source` on the HTML engine (autoescaping) or the text one,
    compiled once per source; `RenderError` when it does not parse."""
    engine = _html_engine if html else _text_engine
    try:
        return engine.from_string(source)
    except TemplateSyntaxError as exc:
        what = "layout" if html else "subject template"
        raise RenderError(f"invalid {what}: {exc}") from exc


def mjml_compile(source: str) -> str:
    try:
        return mjml2html(source)
    except Exception as exc:  # mjml-python raises ValueError/RuntimeError with a parser message
        raise RenderError(f"invalid MJML in the layout: {exc}") from exc
