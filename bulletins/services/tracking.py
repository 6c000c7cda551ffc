"""What the public links record: a click (then where to send the reader), an open, an
unsubscribe. Tokens carry delivery ids only; everything else is read from the database, so a
tampered token or URL can never choose the redirect target."""

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.db import IntegrityError, transaction

from bulletins import tokens
from bulletins.models import Click, Delivery, Open, Unsubscribe
from recommendations.models import Item

USER_AGENT_CHARS = 500
REDIRECT_SCHEMES = {"http", "https"}


class LinkNotFound(LookupError):
    """A valid token whose delivery, position or item no longer exists."""


def utm_url(url: str, *, source: str, campaign: str, content: str) -> str:
    parts = urlsplit(url)
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if not key.startswith("utm_")
    ]
    query += [
        ("utm_source", source),
        ("utm_medium", "email"),
        ("utm_campaign", campaign),
        ("utm_content", content),
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _delivery(delivery_id) -> Delivery:
    delivery = (
        Delivery.objects.select_related("run__bulletin").filter(pk=delivery_id).first()
        if isinstance(delivery_id, int)
        else None
    )
    if delivery is None:
        raise LinkNotFound("no such email")
    return delivery


def click_record(*, token: str, user_agent: str = "", record: bool = True) -> str:
    """Record a click (unless `record` is false) and answer the URL to redirect to. Raises
    `tokens.InvalidToken` for a token that is not ours and `LinkNotFound` when what it names
    is gone."""
    payload = tokens.token_read(tokens.CLICK, token)
    delivery = _delivery(payload["delivery_id"])
    entry = next(
        (
            entry
            for entry in delivery.items
            if entry["position"] == payload["position"]
            and str(entry["item_id"]) == str(payload["item_id"])
        ),
        None,
    )
    if entry is None:
        raise LinkNotFound("no such link in this email")
    item = Item.objects.filter(external_id=entry["item_id"]).first()
    if item is None or not item.url:
        raise LinkNotFound("the item is no longer available")
    if urlsplit(item.url).scheme.lower() not in REDIRECT_SCHEMES:
        # A relative or javascript:/data: URL from a catalogue import is no place to send a
        # reader (and Django refuses to redirect to some of them with a 500).
        raise LinkNotFound("the item has no web address")
    if record:
        Click.objects.create(
            delivery=delivery,
            item=item,
            position=entry["position"],
            user_agent=user_agent[:USER_AGENT_CHARS],
        )
    bulletin = delivery.run.bulletin
    return utm_url(
        item.url,
        source=bulletin.slug,
        campaign=f"{bulletin.slug}-run{delivery.run_id}",
        content=f"p{entry['position']}-{entry.get('source') or 'unknown'}",
    )


def open_record(*, token: str, user_agent: str = "") -> bool:
    """Record an open; False (and nothing written) for a bad token."""
    try:
        payload = tokens.token_read(tokens.OPEN, token)
        delivery = _delivery(payload["delivery_id"])
    except (tokens.InvalidToken, LinkNotFound):
        return False
    Open.objects.create(delivery=delivery, user_agent=user_agent[:USER_AGENT_CHARS])
    return True


def unsubscribe_target(*, token: str) -> Delivery:
    """The delivery an unsubscribe token names (InvalidToken / LinkNotFound otherwise)."""
    payload = tokens.token_read(tokens.UNSUBSCRIBE, token)
    return _delivery(payload["delivery_id"])


def unsubscribe_record(
    *, delivery: Delivery, method: str, all_bulletins: bool = False
) -> Unsubscribe:
    """Unsubscribe the delivery's user from its bulletin (or from all); idempotent."""
    bulletin = None if all_bulletins else delivery.run.bulletin
    try:
        with transaction.atomic():
            return Unsubscribe.objects.create(
                user_id=delivery.user_id, bulletin=bulletin, delivery=delivery, method=method
            )
    except IntegrityError:
        return Unsubscribe.objects.get(user_id=delivery.user_id, bulletin=bulletin)
