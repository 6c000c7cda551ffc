"""What each user's email carries, and the rendered message.

The items are chosen when a run prepares its deliveries and frozen in the delivery row, so a
resumed or retried send renders exactly what was planned. Per block: the user's served list
for the block's placement, from the source the user's experiment arm asks for, without what
the user's last N emails carried (when the placement has an `exclude_recently_sent` rule) and
without items an earlier block of the same email already shows; a block left short is topped
up from the placement's non-personalized (trending) list, through its rules, when the
placement lists `trending` among its fallbacks.
"""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from bulletins import rendering
from bulletins.models import Bulletin, BulletinBlock, Delivery, Variant
from bulletins.services.audience import Recipient, variant_for
from integrations.platforms import Message
from integrations.platforms.braze import connected_content
from recommendations.models import Item
from recommendations.services.serving import TRENDING, recently_sent_days, served_lists

RECENTLY_SENT_LOOKBACK_DAYS = 90


@dataclass(frozen=True)
class Plan:
    """One user's email before it exists: arm, items (with block, position, placement,
    source, reason) and whether a fallback filled any of it."""

    recipient: Recipient
    variant: Variant | None
    items: list[dict]
    used_fallback: bool


def _recently_sent(user_pks: Sequence[int], emails_back: int) -> dict[int, set[str]]:
    """user pk -> item ids of the user's last `emails_back` sent emails."""
    since = timezone.now() - dt.timedelta(days=RECENTLY_SENT_LOOKBACK_DAYS)
    rows = (
        Delivery.objects.filter(
            user_id__in=list(user_pks), status=Delivery.Status.SENT, sent_at__gte=since
        )
        .order_by("user_id", "-sent_at")
        .values_list("user_id", "items")
    )
    sent: dict[int, set[str]] = {}
    seen_emails: dict[int, int] = {}
    for user_pk, items in rows:
        if seen_emails.get(user_pk, 0) >= emails_back:
            continue
        seen_emails[user_pk] = seen_emails.get(user_pk, 0) + 1
        sent.setdefault(user_pk, set()).update(str(entry["item_id"]) for entry in items)
    return sent


def _source_of(variant: Variant | None) -> str | None:
    if variant is None or variant.source == Variant.Source.PLACEMENT:
        return None
    return variant.source


def deliveries_plan(
    bulletin: Bulletin,
    recipients: Sequence[Recipient],
    *,
    blocks: Sequence[BulletinBlock] | None = None,
    variants: Sequence[Variant] | None = None,
) -> tuple[list[Plan], int]:
    """The plan of every recipient's email, and how many recipients got no item at all
    (they are not sent an empty email)."""
    blocks = list(bulletin.blocks.select_related("placement")) if blocks is None else blocks
    variants = list(bulletin.variants.all()) if variants is None else variants
    arms = {r.pk: variant_for(variants, bulletin.slug, r.external_id) for r in recipients}
    chosen: dict[int, list[dict]] = {r.pk: [] for r in recipients}
    fallback: set[int] = set()

    for block_index, block in enumerate(blocks, start=1):
        placement = block.placement
        emails_back = max(recently_sent_days(placement), block.skip_sent_in_last)
        recently_sent = _recently_sent(list(chosen), emails_back) if emails_back else {}
        by_source: dict[str | None, list[int]] = {}
        for pk, arm in arms.items():
            by_source.setdefault(_source_of(arm), []).append(pk)
        short: list[int] = []
        for source, pks in by_source.items():
            served = served_lists(placement=placement, user_pks=pks, source=source)
            for pk in pks:
                got = served.get(pk)
                if got is None:
                    short.append(pk)
                    continue
                if got.fallback:
                    fallback.add(pk)
                _, in_block = _take(
                    chosen[pk], got.items, block_index, block, recently_sent.get(pk)
                )
                if in_block < block.count:
                    short.append(pk)
        if short and TRENDING in placement.fallbacks:
            served = served_lists(placement=placement, user_pks=short, source=TRENDING)
            for pk in short:
                if pk not in served:
                    continue
                added, _ = _take(
                    chosen[pk], served[pk].items, block_index, block, recently_sent.get(pk)
                )
                if added:
                    fallback.add(pk)

    plans, empty = [], 0
    for recipient in recipients:
        items = chosen[recipient.pk]
        if not items:
            empty += 1
            continue
        for position, entry in enumerate(items, start=1):
            entry["position"] = position
        plans.append(
            Plan(recipient, arms[recipient.pk], items, used_fallback=recipient.pk in fallback)
        )
    return plans, empty


def _take(
    chosen: list[dict],
    candidates: list[dict],
    block_index: int,
    block: BulletinBlock,
    recently_sent: set[str] | None,
) -> tuple[int, int]:
    """Append up to the block's count of new items to `chosen`; answers how many were added
    and how many the block holds now."""
    shown = {entry["item_id"] for entry in chosen}
    in_block = sum(1 for entry in chosen if entry["block"] == block_index)
    before = in_block
    for entry in candidates:
        if in_block >= block.count:
            break
        item_id = str(entry["item_id"])
        if item_id in shown or (recently_sent and item_id in recently_sent):
            continue
        chosen.append(
            {
                "item_id": item_id,
                "block": block_index,
                "placement": block.placement.slug,
                "source": entry.get("source", ""),
                "reason": entry.get("reason", ""),
            }
        )
        shown.add(item_id)
        in_block += 1
    return in_block - before, in_block


def items_lookup(item_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    rows = Item.objects.filter(external_id__in=list(set(item_ids))).values(
        "external_id", "title", "url", "image_url", "description"
    )
    return {row["external_id"]: row for row in rows}


def blocks_for(
    blocks: Sequence[BulletinBlock], items: list[dict], lookup: dict[str, dict[str, Any]]
) -> list[rendering.Block]:
    """The rendering blocks for one delivery's items (an item since removed is left out)."""
    grouped: list[rendering.Block] = []
    for block_index, block in enumerate(blocks, start=1):
        shown = []
        for entry in items:
            row = lookup.get(entry["item_id"])
            if entry["block"] != block_index or row is None:
                continue
            shown.append(
                {
                    "item_id": entry["item_id"],
                    "title": row["title"] or entry["item_id"],
                    "url": row["url"],
                    "image_url": row["image_url"],
                    "description": row["description"],
                    "position": entry["position"],
                    "source": entry.get("source", ""),
                }
            )
        if shown:
            grouped.append(rendering.Block(block.title, shown))
    return grouped


def user_context(recipient: Recipient) -> dict[str, Any]:
    """What a subject or layout may print about the user: attributes, email, id."""
    return {**recipient.attributes, "email": recipient.email, "id": recipient.external_id}


def subject_for(bulletin: Bulletin, variant: Variant | None) -> str:
    return (variant.subject_template if variant else "") or bulletin.subject_template


def email_render(
    bulletin: Bulletin,
    *,
    recipient: Recipient,
    variant: Variant | None,
    items: list[dict],
    delivery_id: int,
    blocks: Sequence[BulletinBlock],
    lookup: dict[str, dict[str, Any]],
) -> rendering.RenderedEmail:
    return rendering.bulletin_render(
        subject_template=subject_for(bulletin, variant),
        layout_mjml=bulletin.layout_mjml or None,
        blocks=blocks_for(blocks, items, lookup),
        user=user_context(recipient),
        delivery_id=delivery_id,
    )


def message_of(recipient: Recipient, delivery_id: int, email: rendering.RenderedEmail) -> Message:
    return Message(
        recipient_id=recipient.external_id,
        email=recipient.email,
        subject=email.subject,
        html=email.html,
        text=email.text,
        idempotency_key=str(delivery_id),
        headers=email.headers,
        merge_data={
            key: value
            for key, value in user_context(recipient).items()
            if isinstance(value, str | int | float | bool)
        },
    )


def connected_content_for(*, bulletin_slug: str, user_external_id: str) -> dict | None:
    """The JSON Braze's Connected Content reads for a user: their latest email of the
    bulletin, rendered with that delivery's tracked links (None when there is none)."""
    delivery = (
        Delivery.objects.filter(
            run__bulletin__slug=bulletin_slug, user__external_id=user_external_id
        )
        .exclude(status=Delivery.Status.CANCELLED)
        .select_related("run__bulletin", "user", "variant")
        .order_by("-pk")
        .first()
    )
    if delivery is None:
        return None
    bulletin = delivery.run.bulletin
    user = delivery.user
    recipient = Recipient(user.pk, user.external_id, delivery.email, user.attributes or {})
    email = email_render(
        bulletin,
        recipient=recipient,
        variant=delivery.variant,
        items=delivery.items,
        delivery_id=delivery.pk,
        blocks=list(bulletin.blocks.select_related("placement")),
        lookup=items_lookup([entry["item_id"] for entry in delivery.items]),
    )
    return connected_content(message_of(recipient, delivery.pk, email))
