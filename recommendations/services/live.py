"""One visitor's list for one placement, as the recommendations API and the widget get it, in
a few milliseconds when the list is cached.

    the cached list (the batch's or a refresh's in-house list, or one served earlier)
    -> else the stored list of the arm's source, or one computed now (`served_lists`);
       for a Personalize source with a campaign set, the campaign's list asked in real time,
       else the in-house list (`personalize_realtime_list`)
    -> else the placement's fallbacks; a visitor not known yet gets the shared visitor list
    -> item details, explanations and signed click links

Placements, their arms and item details are read through per-process caches: an edit in
admin shows within `CONFIG_SECONDS`, an item made unavailable within `ITEM_SECONDS`.

While Redis is down every list comes from the database, a few milliseconds slower.
"""

import logging
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from recommendations.models import EndUser, Item, Placement, PlacementVariant
from recommendations.selectors import reason_sentence
from recommendations.services.events import users_get_or_create_anonymous
from recommendations.services.experiments import placement_arm
from recommendations.services.personalize import (
    personalize_realtime_enabled,
    personalize_realtime_list,
)
from recommendations.services.serving import ServedList, served_lists, visitor_list
from recsite import tokens
from recsite.cache_keys import recommendations_cache_key, served_cache_key
from recsite.errors import CACHE_ERRORS
from recsite.local_cache import LocalCache

CONFIG_SECONDS = 30
ITEM_SECONDS = 60
CACHE_DOWN_LOG_SECONDS = 60
_placements = LocalCache(seconds=CONFIG_SECONDS, maxsize=1000)
_items = LocalCache(seconds=ITEM_SECONDS, maxsize=200_000)
_cache_down_logged = LocalCache(seconds=CACHE_DOWN_LOG_SECONDS, maxsize=1)

logger = logging.getLogger(__name__)


class PlacementNotFound(LookupError):
    pass


class ItemRequired(ValueError):
    pass


@dataclass(frozen=True)
class _ItemDetails:
    title: str
    url: str
    image_url: str
    available: bool


def recommendations_live(
    *,
    placement_slug: str,
    user_id: str = "",
    k: int | None = None,
    item_id: str = "",
    create_visitor: bool = False,
) -> dict:
    """The API's answer: the placement, the visitor's arm and the items with their tracked
    links. `user_id` empty is an anonymous visitor without an id; `item_id` is the page's
    item (required by similar-items placements). With `create_visitor` (the widget's
    requests), an id not known yet gets an anonymous profile at once, so the click on its
    very first list can already be tied to the person, as their conversions later will."""
    placement = _placements.get(placement_slug, lambda: _placement_load(placement_slug))
    if placement is None:
        raise PlacementNotFound(f"no active placement {placement_slug!r}")
    if placement.strategy == Placement.Strategy.SIMILAR_ITEMS and not item_id:
        raise ItemRequired(f"placement {placement_slug!r} shows similar items: give the item")
    arm = placement_arm(placement, user_id) if user_id else None
    source = arm.source if arm is not None and arm.source != "placement" else placement.source
    user_pk, entries = _list(placement, source, user_id, item_id, create_visitor)
    k = min(k or placement.count, settings.API_MAX_K)
    return {
        "placement": placement.slug,
        "user": user_id or None,
        "variant": arm.name if arm is not None else None,
        "request_id": uuid.uuid4().hex,
        "items": _items_shown(placement, arm, user_pk, entries, k),
    }


def _placement_load(slug: str) -> Placement | None:
    return Placement.objects.filter(slug=slug, is_active=True).first()


def _list(
    placement: Placement, source: str, user_id: str, item_id: str, create_visitor: bool
) -> tuple[int, list]:
    """(user pk or 0, entries tagged with their source), from the cache when it has them."""
    if not user_id:
        return 0, _visitor_entries(placement, item_id)
    served_key = served_cache_key(
        placement_slug=placement.slug, source=source, user_external_id=user_id, item_id=item_id
    )
    batch_key = None
    if source == Placement.Source.IN_HOUSE and placement.strategy == "personalized":
        batch_key = recommendations_cache_key(
            placement_slug=placement.slug, user_external_id=user_id
        )
    found = _cache_get_many([key for key in (batch_key, served_key) if key])
    batch = found.get(batch_key)
    if batch and batch["items"] and "user_pk" in batch:
        return batch["user_pk"], [{**entry, "source": "inhouse"} for entry in batch["items"]]
    if served_key in found:
        return found[served_key]["user_pk"], found[served_key]["items"]

    user_pk = EndUser.objects.filter(external_id=user_id).values_list("pk", flat=True).first()
    if user_pk is None:
        # Not known yet: the shared visitor list, until their first events make a profile.
        if create_visitor:
            user_pk = users_get_or_create_anonymous(external_ids={user_id})[user_id]
        return user_pk or 0, _visitor_entries(placement, item_id)
    if source == Placement.Source.PERSONALIZE and personalize_realtime_enabled(placement):
        # One call to the campaign, bounded by its timeout; its answer (or the in-house
        # fallback) is cached under this key like any served list, so AWS is asked once.
        served = personalize_realtime_list(placement=placement, user_pk=user_pk)
    else:
        served = served_lists(
            placement=placement, user_pks=[user_pk], source=source, item_id=item_id or None
        ).get(user_pk, ServedList())
    _cache_set(served_key, {"user_pk": user_pk, "items": served.items})
    return user_pk, served.items


def _visitor_entries(placement: Placement, item_id: str) -> list[dict]:
    key = served_cache_key(
        placement_slug=placement.slug, source="visitor", user_external_id="", item_id=item_id
    )
    entries = _cache_get_many([key]).get(key)
    if entries is None:
        entries = visitor_list(placement, item_id=item_id or None).items
        _cache_set(key, entries)
    return entries


# Redis down answers as a miss, and a list that cannot be cached is served all the same:
# the API stays up on the database (see CACHE_ERRORS).
def _cache_get_many(keys: list[str]) -> dict:
    try:
        return cache.get_many(keys)
    except CACHE_ERRORS as error:
        _cache_down(error)
        return {}


def _cache_set(key: str, value) -> None:
    try:
        cache.set(key, value, settings.API_SERVED_CACHE_SECONDS)
    except CACHE_ERRORS as error:
        _cache_down(error)


def _cache_down(error: Exception) -> None:
    """One warning a minute per process, not one per request."""
    _cache_down_logged.get(
        "warned",
        lambda: logger.warning("Cache unavailable, lists served from the database: %s", error),
    )


def _items_shown(
    placement: Placement,
    arm: PlacementVariant | None,
    user_pk: int,
    entries: list[dict],
    k: int,
) -> list[dict]:
    wanted = {entry["item_id"] for entry in entries}
    wanted |= {entry["because_item_id"] for entry in entries if entry.get("because_item_id")}
    details = _items.get_many(wanted, _items_load)
    shown: list[dict] = []
    for entry in entries:
        item = details.get(entry["item_id"])
        if item is None or not item.available:
            continue  # made unavailable (or removed) since the list was computed
        position = len(shown) + 1
        because = details.get(entry.get("because_item_id"))
        source = entry.get("source", "inhouse")
        shown.append(
            {
                "id": entry["item_id"],
                "title": item.title,
                "url": tokens.widget_click_url(
                    placement.pk,
                    user_pk,
                    position,
                    entry["item_id"],
                    source,
                    arm.pk if arm is not None else None,
                ),
                "item_url": item.url,
                "image": item.image_url,
                "score": entry.get("score"),
                "source": source,
                "position": position,
                "reason": entry.get("reason", ""),
                "because_item_id": entry.get("because_item_id"),
                "explanation": reason_sentence(
                    entry.get("reason", ""), because.title if because else None
                ),
            }
        )
        if len(shown) == k:
            break
    return shown


def _items_load(external_ids: list[str]) -> dict[str, _ItemDetails]:
    rows = Item.objects.filter(external_id__in=external_ids).values_list(
        "external_id", "title", "url", "image_url", "available"
    )
    return {
        external_id: _ItemDetails(title or external_id, url, image_url, available)
        for external_id, title, url, image_url, available in rows
    }
