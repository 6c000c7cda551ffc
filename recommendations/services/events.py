"""Behaviour event intake: validation, idempotency by event id, anonymous profiles.

The events API and the CSV import share the parsing rules of `recsite.validation`, so an
event means the same thing whichever way it arrives.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from recommendations.models import EndUser, EventType, Interaction, Item
from recommendations.services.refreshing import recommendations_refresh_enqueue
from recommendations.signals import conversion_events_stored
from recsite.validation import (
    MAX_FUTURE_SKEW,
    InvalidValue,
    event_id_derive,
    event_value_clean,
    external_id_clean,
    json_check,
    text_check,
    timestamp_parse,
)

EVENT_FIELDS = {
    "user_id",
    "item_id",
    "event_type",
    "event_value",
    "timestamp",
    "event_id",
    "context",
}


@dataclass
class EventIntakeResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: list[dict] = field(default_factory=list)
    user_ids: set[int] = field(default_factory=set)

    def as_dict(self) -> dict:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "errors": self.errors,
        }


def _event_clean(raw: Any, event_types: dict[str, EventType], now: datetime) -> dict:
    """A validated event, or InvalidValue naming the field (as `field: reason`)."""
    if not isinstance(raw, dict):
        raise InvalidValue("event: each event must be a JSON object")
    for key in raw:
        try:
            text_check(key, "a field name")
        except InvalidValue as error:
            raise InvalidValue(f"event: {error}") from None
    unknown = sorted(set(raw) - EVENT_FIELDS)
    if unknown:
        raise InvalidValue(
            f"unknown field (allowed: {', '.join(sorted(EVENT_FIELDS))})", field=unknown[0]
        )
    cleaned: dict[str, Any] = {}
    for name in ("user_id", "item_id"):
        try:
            cleaned[name] = external_id_clean(raw.get(name), name)
        except InvalidValue as error:
            raise InvalidValue(f"{name}: {error}") from None
    type_name = raw.get("event_type")
    if not isinstance(type_name, str) or type_name not in event_types:
        known = ", ".join(sorted(event_types))
        raise InvalidValue(f"event_type: unknown event type {type_name!r} (known: {known})")
    cleaned["event_type"] = event_types[type_name]
    try:
        cleaned["event_value"] = event_value_clean(raw.get("event_value"))
    except InvalidValue as error:
        raise InvalidValue(f"event_value: {error}") from None
    if raw.get("timestamp") in (None, ""):
        cleaned["timestamp"] = now
    else:
        try:
            cleaned["timestamp"] = timestamp_parse(raw["timestamp"])
        except InvalidValue as error:
            raise InvalidValue(f"timestamp: {error}") from None
        if cleaned["timestamp"] > now + MAX_FUTURE_SKEW:
            raise InvalidValue("timestamp: more than a day in the future")
    context = raw.get("context") or {}
    if not isinstance(context, dict):
        raise InvalidValue("context: must be a JSON object")
    try:
        cleaned["context"] = json_check(context, "context")
    except InvalidValue as error:
        raise InvalidValue(f"context: {error}") from None
    if raw.get("event_id") in (None, ""):
        cleaned["event_id"] = event_id_derive(
            user_id=cleaned["user_id"],
            item_id=cleaned["item_id"],
            event_type=type_name,
            timestamp=cleaned["timestamp"],
            event_value=cleaned["event_value"],
        )
    else:
        try:
            cleaned["event_id"] = external_id_clean(raw["event_id"], "event_id")
        except InvalidValue as error:
            raise InvalidValue(f"event_id: {error}") from None
    return cleaned


def _reject(result: EventIntakeResult, index: int, error: InvalidValue | str) -> None:
    message = str(error)
    if getattr(error, "field", None) is not None:
        field_name, reason = error.field, message
    else:
        field_name, _, reason = message.partition(": ")
    result.rejected += 1
    result.errors.append({"index": index, "field": field_name, "message": reason or message})


@transaction.atomic
def events_ingest(*, events: list[Any], source: str = Interaction.Source.API) -> EventIntakeResult:
    """Store the valid events of a batch once each; report the rest by index and field.

    Valid events are stored even when others in the batch are rejected, so a client that
    resends the whole batch after fixing the rejected ones gets duplicates, never doubles.
    """
    result = EventIntakeResult()
    now = timezone.now()
    event_types = {event_type.name: event_type for event_type in EventType.objects.all()}

    valid: list[tuple[int, dict]] = []
    for index, raw in enumerate(events):
        try:
            valid.append((index, _event_clean(raw, event_types, now)))
        except InvalidValue as error:
            _reject(result, index, error)

    item_pks = dict(
        Item.objects.filter(external_id__in={event["item_id"] for _, event in valid}).values_list(
            "external_id", "pk"
        )
    )
    stored_event_ids = set(
        Interaction.objects.filter(
            event_id__in={event["event_id"] for _, event in valid}
        ).values_list("event_id", flat=True)
    )
    fresh: list[dict] = []
    for index, event in valid:
        if event["item_id"] not in item_pks:
            _reject(result, index, f"item_id: unknown item {event['item_id']!r}")
        elif event["event_id"] in stored_event_ids:
            result.duplicates += 1
        else:
            stored_event_ids.add(event["event_id"])
            fresh.append(event)

    user_pks = users_get_or_create_anonymous(external_ids={event["user_id"] for event in fresh})
    Interaction.objects.bulk_create(
        [
            Interaction(
                event_id=event["event_id"],
                user_id=user_pks[event["user_id"]],
                item_id=item_pks[event["item_id"]],
                event_type=event["event_type"],
                event_value=event["event_value"],
                timestamp=event["timestamp"],
                context=event["context"],
                source=source,
            )
            for event in fresh
        ],
        batch_size=1000,
        ignore_conflicts=True,  # a concurrent replay of the same event id is still a duplicate
    )
    result.accepted = len(fresh)
    result.user_ids = {user_pks[event["user_id"]] for event in fresh}
    # Their lists follow their behaviour within seconds, once the events are committed; events
    # of weight 0 (impressions) say nothing of taste and change no list.
    to_refresh = {user_pks[event["user_id"]] for event in fresh if event["event_type"].weight > 0}
    if to_refresh:
        transaction.on_commit(lambda: recommendations_refresh_enqueue(user_pks=to_refresh))
    conversions = [event["event_id"] for event in fresh if event["event_type"].is_conversion]
    if conversions:
        transaction.on_commit(
            lambda: conversion_events_stored.send(sender=Interaction, event_ids=conversions)
        )
    result.errors.sort(key=lambda error: error["index"])
    return result


def users_get_or_create_anonymous(*, external_ids: set[str]) -> dict[str, int]:
    """Primary keys for the given external ids, creating anonymous profiles for unknown ones."""
    if not external_ids:
        return {}
    pks = dict(
        EndUser.objects.filter(external_id__in=external_ids).values_list("external_id", "pk")
    )
    missing = external_ids - pks.keys()
    if missing:
        EndUser.objects.bulk_create(
            [EndUser(external_id=external_id, is_anonymous=True) for external_id in missing],
            ignore_conflicts=True,
        )
        pks.update(EndUser.objects.filter(external_id__in=missing).values_list("external_id", "pk"))
    return pks
