"""What the public links record: a click (then where to send the reader), an open, an
unsubscribe. Tokens carry delivery ids only; everything else is read from the database, so a
tampered token or URL can never choose the redirect target."""

import datetime as dt
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.crypto import salted_hmac

from bulletins.machines import MachineRules, machine_reason
from bulletins.models import Click, Delivery, Open, Unsubscribe
from recommendations.models import EndUser, Item, Placement, PlacementVariant
from recsite import tokens
from recsite.validation import InvalidValue, text_check

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


def click_record(*, token: str, method: str = "GET", user_agent: str = "", ip: str = "") -> str:
    """Record a click (in an email, or in a website widget) and answer the URL to redirect to.
    Raises `tokens.InvalidToken` for a token that is not ours and `LinkNotFound` when what it
    names is gone."""
    try:
        payload = tokens.token_read(tokens.CLICK, token)
    except tokens.InvalidToken:
        widget = tokens.token_read(tokens.WIDGET_CLICK, token)  # InvalidToken when neither
        return _widget_click(widget, method=method, user_agent=user_agent, ip=ip)
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
    item, url = _web_url(entry["item_id"])
    _click_write(delivery, item, entry, method=method, user_agent=user_agent, ip=ip)
    bulletin = delivery.run.bulletin
    return utm_url(
        url,
        source=bulletin.slug,
        campaign=f"{bulletin.slug}-run{delivery.run_id}",
        content=f"p{entry['position']}-{entry.get('source') or 'unknown'}",
    )


def _web_url(item_id) -> tuple[Item, str]:
    """The item and its http(s) URL: a relative or javascript:/data: URL from a catalogue
    import is no place to send a reader (and Django refuses some of them with a 500)."""
    item = Item.objects.filter(external_id=str(item_id)).first()
    if item is None or not item.url:
        raise LinkNotFound("the item is no longer available")
    if urlsplit(item.url).scheme.lower() not in REDIRECT_SCHEMES:
        raise LinkNotFound("the item has no web address")
    return item, item.url


@transaction.atomic
def _widget_click(payload: dict, *, method: str, user_agent: str, ip: str) -> str:
    """A widget link's click: recorded with its placement, experiment arm, user, position and
    source. The reader goes to the item's own URL, without UTM parameters: they are on the
    site already, and UTM parameters on internal links would start a new analytics session."""
    if not _widget_payload_valid(payload):
        raise LinkNotFound("no such recommendation")
    placement = Placement.objects.filter(pk=payload["placement_id"]).first()
    if placement is None:
        raise LinkNotFound("no such recommendation")
    item, url = _web_url(payload["item_id"])
    user_id = payload["user_id"]
    user = EndUser.objects.filter(pk=user_id).first() if user_id else None
    variant_id = payload["variant_id"]
    # An arm of another placement (or one deleted since) is no arm of this click.
    variant = (
        PlacementVariant.objects.filter(pk=variant_id, placement=placement).first()
        if variant_id
        else None
    )
    widget_clicks = Click.objects.filter(
        channel=Click.Channel.WIDGET, user=user, placement=placement
    )
    # An unknown visitor's clicks cannot be told apart: each is judged on its own.
    _click_save(
        hits=widget_clicks if user else Click.objects.none(),
        same_link=widget_clicks.filter(item=item) if user else Click.objects.none(),
        seconds_since_sent=None,
        method=method,
        user_agent=user_agent,
        ip=ip,
        channel=Click.Channel.WIDGET,
        user=user,
        placement=placement,
        placement_variant=variant,
        item=item,
        position=payload["position"],
        source=str(payload["source"])[:20],
    )
    return url


def _widget_payload_valid(payload: dict) -> bool:
    """Each field of the type and range it is stored as: the signature proves the token is
    ours, not that every version of the code that signed it wrote what this one reads."""
    whole = [payload[name] for name in ("placement_id", "user_id", "position", "variant_id")]
    if any(type(value) is not int for value in whole):  # bool is not an id
        return False
    if not 1 <= payload["position"] <= 32767:  # Click.position is a small integer
        return False
    if not isinstance(payload["source"], str) or type(payload["item_id"]) not in (str, int):
        return False
    try:
        text_check(payload["source"], "source")
        text_check(str(payload["item_id"]), "item_id")
    except InvalidValue:  # a NUL or a lone surrogate: no database stores or finds it
        return False
    return True


def _rules() -> MachineRules:
    return MachineRules(
        too_soon_seconds=settings.TRACKING_TOO_SOON_SECONDS,
        burst_hits=settings.TRACKING_BURST_HITS,
        burst_seconds=settings.TRACKING_BURST_SECONDS,
    )


def _since_sent(delivery: Delivery, now) -> float | None:
    return (now - delivery.sent_at).total_seconds() if delivery.sent_at else None


def ip_hash(ip: str) -> str:
    """A salted hash that tells hits from one address apart without keeping the address."""
    if not ip:
        return ""
    return salted_hmac("bulletins.tracking.ip", ip, algorithm="sha256").hexdigest()[:24]


@transaction.atomic
def _click_write(
    delivery: Delivery, item: Item, entry: dict, *, method: str, user_agent: str, ip: str
) -> Click:
    # Lock the delivery row: clicks on one email are judged one after another.
    Delivery.objects.select_for_update().filter(pk=delivery.pk).first()
    email_clicks = Click.objects.filter(delivery=delivery)
    return _click_save(
        hits=email_clicks,
        same_link=email_clicks.filter(position=entry["position"]),
        seconds_since_sent=_since_sent(delivery, timezone.now()),
        method=method,
        user_agent=user_agent,
        ip=ip,
        channel=Click.Channel.EMAIL,
        delivery=delivery,
        user_id=delivery.user_id,
        run_id=delivery.run_id,
        variant_id=delivery.variant_id,
        placement=Placement.objects.filter(slug=entry.get("placement", "")).first(),
        item=item,
        position=entry["position"],
        source=entry.get("source", ""),
    )


def _click_save(
    *,
    hits: QuerySet[Click],
    same_link: QuerySet[Click],
    seconds_since_sent: float | None,
    method: str,
    user_agent: str,
    ip: str,
    **fields,
) -> Click:
    """Judge a click against the hits before it (`hits`: on the same email or widget;
    `same_link`: on the same link) and save it: a machine's or a person's, first or repeat.
    A burst also marks its earlier hits as a machine's."""
    now = timezone.now()
    rules = _rules()
    recent = hits.filter(created_at__gte=now - dt.timedelta(seconds=rules.burst_seconds))
    verdict = machine_reason(
        method=method,
        user_agent=user_agent,
        seconds_since_sent=seconds_since_sent,
        recent_hits=recent.count(),
        rules=rules,
    )
    if verdict.burst:
        recent.filter(is_human=True).update(
            is_human=False, is_first=False, bot_reason=verdict.reason
        )
    first = verdict.is_human and not same_link.filter(is_human=True).exists()
    return Click.objects.create(
        is_human=verdict.is_human,
        bot_reason=verdict.reason,
        is_first=first,
        user_agent=user_agent[:USER_AGENT_CHARS],
        ip_hash=ip_hash(ip),
        created_at=now,
        **fields,
    )


def open_record(*, token: str, user_agent: str = "") -> bool:
    """Record an open; False (and nothing written) for a bad token."""
    try:
        payload = tokens.token_read(tokens.OPEN, token)
        delivery = _delivery(payload["delivery_id"])
    except (tokens.InvalidToken, LinkNotFound):
        return False
    now = timezone.now()
    verdict = machine_reason(
        method="GET",
        user_agent=user_agent,
        seconds_since_sent=_since_sent(delivery, now),
        recent_hits=0,
        rules=_rules(),
    )
    human = verdict.is_human
    first = human and not Open.objects.filter(delivery=delivery, is_human=True).exists()
    Open.objects.create(
        delivery=delivery,
        is_human=human,
        bot_reason=verdict.reason,
        is_first=first,
        user_agent=user_agent[:USER_AGENT_CHARS],
        created_at=now,
    )
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
