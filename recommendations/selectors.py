"""Reads that several services use: the database as the engine's DataFrames, the users and
placements a batch computes for, and lists explained for people."""

import datetime as dt
from collections.abc import Iterable

import pandas as pd
from django.db import connection
from django.db.models import QuerySet

from recommendations.engine.datasets import item_features_derive
from recommendations.models import (
    EndUser,
    EventType,
    Interaction,
    Item,
    Placement,
    RecommendationSet,
    SegmentMembership,
)

FETCH_ROWS = 100_000
UNIX_EPOCH = pd.Timestamp(0, tz="UTC")
INTERACTION_COLUMNS = ["user_id", "item_id", "timestamp", "event_type", "event_value"]


def _rows(queryset: QuerySet, fields: list[str]) -> Iterable[tuple]:
    """Rows of a values_list query fetched in large blocks straight from the cursor."""
    sql, params = queryset.values_list(*fields).query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while block := cursor.fetchmany(FETCH_ROWS):
            yield from block


def interactions_frame(queryset: QuerySet | None = None) -> pd.DataFrame:
    """Interactions as `user_id, item_id, timestamp (unix s), event_type, event_value`."""
    queryset = Interaction.objects.order_by() if queryset is None else queryset
    fields = ["user__external_id", "item__external_id", "timestamp", "event_type__name"]
    frame = pd.DataFrame(
        list(_rows(queryset, [*fields, "event_value"])), columns=INTERACTION_COLUMNS
    )
    timestamps = pd.to_datetime(frame["timestamp"], utc=True, format="mixed")
    frame["timestamp"] = (timestamps - UNIX_EPOCH).dt.total_seconds()
    frame["event_value"] = pd.to_numeric(frame["event_value"], errors="coerce")
    return frame


ITEM_COLUMNS = {  # model field -> engine column
    "external_id": "item_id",
    "title": "title",
    "description": "description",
    "categories": "categories",
    "tags": "tags",
    "price": "price",
    "published_at": "published_at",
    "available": "available",
    "attributes": "attributes",
}


def items_frame() -> pd.DataFrame:
    """Items with their text, categories, tags and attributes (flattened into columns)."""
    rows = Item.objects.values_list(*ITEM_COLUMNS)
    base = pd.DataFrame(list(rows), columns=list(ITEM_COLUMNS.values()))
    base["price"] = pd.to_numeric(base["price"], errors="coerce")  # Decimal -> float
    return item_features_derive(_attributes_flatten(base))


def user_attributes_frame() -> pd.DataFrame | None:
    """User attributes (for cold start and segments), or None when no user has any."""
    rows = list(EndUser.objects.exclude(attributes={}).values_list("external_id", "attributes"))
    if not rows:
        return None
    return _attributes_flatten(pd.DataFrame(rows, columns=["user_id", "attributes"]))


def _attributes_flatten(frame: pd.DataFrame) -> pd.DataFrame:
    attributes = pd.json_normalize(frame.pop("attributes").tolist(), max_level=0)
    attributes = attributes.drop(columns=[c for c in attributes if c in frame.columns])
    return pd.concat([frame.reset_index(drop=True), attributes], axis=1)


def event_weighting() -> dict:
    """The engine parameters that carry the event types' weights from admin."""
    event_types = list(EventType.objects.all())
    return {
        "event_weights": {event_type.name: event_type.weight for event_type in event_types},
        "value_events": sorted(
            event_type.name
            for event_type in event_types
            if event_type.value_mode != EventType.ValueMode.FIXED
        ),
    }


def user_history_frame(user_pk: int, limit: int = 500) -> pd.DataFrame:
    """One user's latest interactions, for a refresh without refitting."""
    return interactions_frame(
        Interaction.objects.filter(user_id=user_pk).order_by("-timestamp")[:limit]
    )


def user_keys_frame(users: QuerySet[EndUser]) -> pd.DataFrame:
    """The users a list is computed for: pk, external_id, opt_out (of profiling), by pk."""
    return pd.DataFrame(
        users.order_by("pk").values_list("pk", "external_id", "personalization_opt_out"),
        columns=["pk", "external_id", "opt_out"],
    ).astype({"opt_out": bool})


def segment_members(users: pd.DataFrame) -> dict[int, set[str]]:
    """Segment id -> the external ids of these users in it (for segment-scoped rules)."""
    segments: dict[int, set[str]] = {}
    memberships = SegmentMembership.objects.filter(user_id__in=users["pk"].tolist())
    for segment_id, external_id in memberships.values_list("segment_id", "user__external_id"):
        segments.setdefault(segment_id, set()).add(external_id)
    return segments


def personalized_placements() -> list[Placement]:
    """The active placements whose lists the batch and a refresh compute for every user."""
    return list(Placement.objects.filter(is_active=True, strategy=Placement.Strategy.PERSONALIZED))


def items_consumed_since(
    users: pd.DataFrame, *, after_pk: int | None = None, since: dt.datetime | None = None
) -> dict[str, set[str]]:
    """External user id -> the items they engaged with (events of a positive weight) stored
    after interaction `after_pk`, or else received at or after `since`: what a model fitted on
    the events before does not know they saw."""
    newer = {"pk__gt": after_pk} if after_pk is not None else {"received_at__gte": since}
    rows = Interaction.objects.filter(
        user_id__in=users["pk"].tolist(), event_type__weight__gt=0, **newer
    ).values_list("user__external_id", "item__external_id")
    consumed: dict[str, set[str]] = {}
    for user_id, item_id in rows:
        consumed.setdefault(user_id, set()).add(item_id)
    return consumed


REASONS = {
    "collaborative": "because you engaged with “{because}”",
    "content": "similar to “{because}”",
    "popularity": "popular right now",
    "cold_start": "popular with people like you",
    "trending": "trending",
    "similar": "similar to this item",
    "pinned": "placed here by a rule",
    "personalize": "picked for you",
}


def reason_sentence(reason: str, because_title: str | None) -> str:
    """Why an item is in a list, in words a reader understands ("" for an unknown reason)."""
    template = REASONS.get(reason, "")
    if because_title is None and "{because}" in template:
        template = REASONS["popularity"]
    return template.format(because=because_title)


def recommendations_explained(*, user_pk: int, placement_slug: str) -> list[dict]:
    """A user's stored list with titles and a sentence saying why each item is there."""
    recommendation_set = (
        RecommendationSet.objects.filter(user_id=user_pk, placement__slug=placement_slug)
        .order_by("source")
        .first()
    )
    if recommendation_set is None:
        return []
    return entries_explained(recommendation_set.items, source=recommendation_set.source)


def entries_explained(entries: list[dict], *, source: str) -> list[dict]:
    """List entries with titles and a sentence saying why each item is there."""
    ids = {e["item_id"] for e in entries} | {e.get("because_item_id") for e in entries}
    titles = dict(Item.objects.filter(external_id__in=ids).values_list("external_id", "title"))
    explained = []
    for rank, entry in enumerate(entries, start=1):
        because = titles.get(entry.get("because_item_id"), entry.get("because_item_id"))
        why = "; ".join([reason_sentence(entry["reason"], because), *entry.get("rules", [])])
        explained.append(
            {
                "rank": rank,
                "item_id": entry["item_id"],
                "title": titles.get(entry["item_id"], entry["item_id"]),
                "score": entry["score"],
                "source": source,
                "reason": entry["reason"],
                "why": why,
            }
        )
    return explained
