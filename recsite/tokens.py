"""Signed, URL-safe tokens for the public tracking URLs: click `/r/<token>`, open `/o/<token>.gif`
and unsubscribe `/u/<token>`.

A token is `base64url(json payload)` + `.` + `base64url(truncated HMAC-SHA256)`. The payload
holds only small ids (delivery id, item position, item id), never an email address or a user id;
the delivery row links to the user on the server. The kind is part of the HMAC salt, so a click
token never reads as an unsubscribe token. Tokens are short on purpose: every item link carries
one, and the email must stay under Gmail's 102 KB clipping limit.
"""

import base64
import binascii
import hashlib
import hmac
import json
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.utils.crypto import constant_time_compare

CLICK = "click"
WIDGET_CLICK = "widget"
OPEN = "open"
UNSUBSCRIBE = "unsubscribe"
KINDS = {
    CLICK: ("delivery_id", "position", "item_id"),
    # A website widget's link: the placement, the end user's pk (0 when unknown), the
    # position and item shown, the source that ranked it, and the experiment arm (0: none).
    WIDGET_CLICK: ("placement_id", "user_id", "position", "item_id", "source", "variant_id"),
    OPEN: ("delivery_id",),
    UNSUBSCRIBE: ("delivery_id",),
}
SIGNATURE_BYTES = 12  # 96 bits of HMAC: 16 characters, far beyond guessing over HTTP
PATHS = {
    CLICK: "/r/{token}",
    WIDGET_CLICK: "/r/{token}",
    OPEN: "/o/{token}.gif",
    UNSUBSCRIBE: "/u/{token}",
}


class InvalidToken(ValueError):
    """A token that was tampered with, is of another kind, or is not a token at all."""


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@lru_cache(maxsize=16)
def _hmac_key(kind: str, secret: str) -> bytes:
    """The key Django's `salted_hmac` derives, derived once per kind and secret: a run signs
    a dozen links per email. The salt keeps the module's first home, so links in emails sent
    before the move still work."""
    return hashlib.sha256(f"bulletins.tokens.{kind}".encode() + secret.encode()).digest()


def _signature(kind: str, body: str) -> str:
    key = _hmac_key(kind, settings.SECRET_KEY)
    digest = hmac.new(key, body.encode(), hashlib.sha256).digest()
    return _b64encode(digest[:SIGNATURE_BYTES])


# One encoder for every token: `json.dumps` with options builds a new one per call, and the
# recommendations API signs a link for every item it answers with.
_compact_json = json.JSONEncoder(separators=(",", ":")).encode


def _token_make(kind: str, values: list[Any]) -> str:
    body = _b64encode(_compact_json(values).encode())
    return f"{body}.{_signature(kind, body)}"


def click_token(delivery_id: int, position: int, item_id: int | str) -> str:
    return _token_make(CLICK, [int(delivery_id), int(position), item_id])


def widget_click_token(
    placement_id: int,
    user_id: int | None,
    position: int,
    item_id: int | str,
    source: str,
    variant_id: int | None = None,
) -> str:
    values = [int(placement_id), int(user_id or 0), int(position), item_id, source]
    return _token_make(WIDGET_CLICK, [*values, int(variant_id or 0)])


def open_token(delivery_id: int) -> str:
    return _token_make(OPEN, [int(delivery_id)])


def unsubscribe_token(delivery_id: int) -> str:
    return _token_make(UNSUBSCRIBE, [int(delivery_id)])


def token_read(kind: str, token: str) -> dict[str, Any]:
    """The payload of a valid token of `kind` as a dict (`delivery_id`, and for clicks
    `position` and `item_id`); `InvalidToken` for anything else."""
    if kind not in KINDS:
        raise InvalidToken(f"unknown token kind {kind!r}")
    if not isinstance(token, str) or token.count(".") != 1:
        raise InvalidToken("malformed token")
    body, signature = token.split(".")
    if not body or not constant_time_compare(signature, _signature(kind, body)):
        raise InvalidToken("bad token signature")
    try:
        values = json.loads(_b64decode(body))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidToken("malformed token payload") from exc
    names = KINDS[kind]
    if not isinstance(values, list) or len(values) != len(names):
        raise InvalidToken("malformed token payload")
    return dict(zip(names, values, strict=True))


def public_base_url() -> str:
    return getattr(settings, "PUBLIC_BASE_URL", "http://localhost:8000").rstrip("/")


def token_url(kind: str, token: str) -> str:
    """The absolute public URL for a token of `kind`."""
    return public_base_url() + PATHS[kind].format(token=token)


def click_url(delivery_id: int, position: int, item_id: int | str) -> str:
    return token_url(CLICK, click_token(delivery_id, position, item_id))


def widget_click_url(
    placement_id: int,
    user_id: int | None,
    position: int,
    item_id: int | str,
    source: str,
    variant_id: int | None = None,
) -> str:
    token = widget_click_token(placement_id, user_id, position, item_id, source, variant_id)
    return token_url(WIDGET_CLICK, token)


def open_url(delivery_id: int) -> str:
    return token_url(OPEN, open_token(delivery_id))


def unsubscribe_url(delivery_id: int) -> str:
    return token_url(UNSUBSCRIBE, unsubscribe_token(delivery_id))
