"""Conversions: a conversion event (an event type marked as one: purchase, signup, completed
watch, ...) by a user within the event type's window after one of their human clicks is
attributed to the last such click, and through it to the bulletin run, variant, source and
position (or the widget's placement and experiment arm). Each event is attributed at most
once; machine clicks never get one."""

import datetime as dt
from collections.abc import Sequence

from django.db import IntegrityError, transaction
from django.utils import timezone

from bulletins.models import Click, Conversion
from recommendations.models import Interaction


def last_click_before(*, user_id: int, at: dt.datetime, window_days: int) -> Click | None:
    return (
        Click.objects.filter(
            user_id=user_id,
            is_human=True,
            created_at__lte=at,
            created_at__gte=at - dt.timedelta(days=window_days),
        )
        .order_by("-created_at", "-pk")
        .first()
    )


def conversions_attribute(*, event_ids: Sequence[str]) -> int:
    """Attribute these conversion events; answers how many were attributed now (events of
    other types, already attributed, or without a click in their window are left)."""
    events = Interaction.objects.filter(
        event_id__in=list(event_ids), event_type__is_conversion=True, conversion__isnull=True
    ).select_related("event_type")
    attributed = 0
    for event in events:
        click = last_click_before(
            user_id=event.user_id,
            at=event.timestamp,
            window_days=event.event_type.attribution_window_days,
        )
        if click is None:
            continue
        try:
            with transaction.atomic():
                Conversion.objects.create(
                    interaction=event,
                    click=click,
                    user_id=event.user_id,
                    channel=click.channel,
                    run_id=click.run_id,
                    variant_id=click.variant_id,
                    placement_id=click.placement_id,
                    placement_variant_id=click.placement_variant_id,
                    source=click.source,
                    position=click.position,
                    event_type=event.event_type.name,
                    value=event.event_value,
                    converted_at=event.timestamp,
                )
        except IntegrityError:  # attributed meanwhile by another worker
            continue
        attributed += 1
    return attributed


def conversions_backfill(*, days: int) -> int:
    """Attribute the conversion events of the last `days` days that are not yet (imported
    events, or events that came before their click was recorded)."""
    since = timezone.now() - dt.timedelta(days=days)
    event_ids = Interaction.objects.filter(
        timestamp__gte=since, event_type__is_conversion=True, conversion__isnull=True
    ).values_list("event_id", flat=True)
    total = 0
    ids = list(event_ids)
    for start in range(0, len(ids), 1000):
        total += conversions_attribute(event_ids=ids[start : start + 1000])
    return total
