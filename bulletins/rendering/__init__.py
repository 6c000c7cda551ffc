"""Per-user bulletin rendering: subject, MJML -> HTML, a plain-text part and the RFC 8058 headers.

`bulletin_render` is pure apart from reading settings (`SECRET_KEY` for the tokens,
`PUBLIC_BASE_URL`, optional `UNSUBSCRIBE_MAILTO`): it takes the blocks of recommended items and
returns a `RenderedEmail`, which becomes an `integrations.platforms.Message`. Every item link goes
through the tracked click URL `/r/<token>`; the raw item URL never appears in the email.

A layout is MJML with Django template syntax, rendered with autoescaping (so item titles with `<`,
`&` or quotes stay text), then compiled by mjml-python. Its context:
`subject`, `user` (plain values only), `blocks` (each `title` and `items`; each item `title`,
`click_url`, `image_url`, `description`, `position`, `source`), `unsubscribe_url`, `open_url`.

Compiling MJML is most of the cost of an email, and users' MJML differ only in their values, so
`bulletin_render` compiles each shape of email once, with markers in place of the values, and
fills the compiled skeleton in for every user of that shape (`MjmlSkeletons`). The result is the
same bytes as compiling that user's MJML: see `MjmlSkeletons` for why, and for when it compiles.

Modules: `base` (limits, the default layout, errors, template engines, the MJML compiler),
`render` (one user's email), `skeleton_cache` (the compiled skeletons).
"""

from bulletins.rendering.base import (
    DEFAULT_LAYOUT_MJML,
    GMAIL_CLIP_BYTES,
    EmailTooLarge,
    RenderError,
    mjml_compile,
)
from bulletins.rendering.render import (
    Block,
    RenderedEmail,
    bulletin_render,
    subject_render,
    unsubscribe_headers,
)
from bulletins.rendering.skeleton_cache import MjmlSkeletons, layout_is_plain, skeletons

__all__ = [
    "DEFAULT_LAYOUT_MJML",
    "GMAIL_CLIP_BYTES",
    "Block",
    "EmailTooLarge",
    "MjmlSkeletons",
    "RenderError",
    "RenderedEmail",
    "bulletin_render",
    "layout_is_plain",
    "mjml_compile",
    "skeletons",
    "subject_render",
    "unsubscribe_headers",
]
