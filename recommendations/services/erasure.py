"""Erasure: forget one end user (GDPR article 17) while the numbers stay what they were.

`user_forget` removes, in one transaction, everything the service holds of the user: their
events (interactions), recommendation lists (rows and cached copies), segment memberships,
and through the `user_forgetting` signal what other apps hold (bulletins: deliveries, clicks,
opens, conversions, unsubscribes), then the user row itself. Receivers first turn what the
user added to aggregate figures (a bulletin's experiment report, its runs' counts) into
anonymous counts, so the totals do not change. What is kept, and why, is in
docs/RELIABILITY.md (Security → Erasure).

A failure anywhere rolls the whole erasure back; a dry run does all of it and rolls back, so
it reports exactly what a real run would remove. Cached lists are dropped once committed.
"""

import logging
from collections import Counter
from dataclasses import dataclass, field

from django.apps import apps
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.db import transaction

from recommendations.models import (
    EndUser,
    Interaction,
    Placement,
    RecommendationSet,
    SegmentMembership,
)
from recommendations.signals import user_forgetting
from recsite.cache_keys import (
    SERVED_SOURCES,
    recommendations_cache_key,
    refresh_pending_key,
    served_cache_key,
)
from recsite.errors import CACHE_ERRORS

logger = logging.getLogger(__name__)

ERASED_REPR = "(erased end user)"


@dataclass
class Erased:
    """What one part of the service removed and kept for an erasure: rows per model label
    (`"recommendations.Interaction"`). A receiver of `user_forgetting` returns one."""

    removed: Counter = field(default_factory=Counter)
    kept: Counter = field(default_factory=Counter)

    def add(self, other: "Erased") -> None:
        self.removed.update(other.removed)
        self.kept.update(other.kept)


@dataclass(frozen=True)
class ErasureReport:
    external_id: str
    dry_run: bool
    found: bool  # False: no such user (already forgotten): nothing removed
    removed: dict[str, int]
    kept: dict[str, int]
    cache_keys: int

    def lines(self) -> list[str]:
        """What was removed and kept, one line per kind of row, for people."""
        verb = "would remove" if self.dry_run else "removed"
        keep = "would keep" if self.dry_run else "kept"
        lines = [f"{verb} {count} {_plural(label, count)}" for label, count in self.removed.items()]
        lines.append(f"{verb} {self.cache_keys} cached list keys (if present)")
        lines += [f"{keep} {count} {_plural(label, count)}" for label, count in self.kept.items()]
        return lines


class _DryRun(Exception):
    def __init__(self, report: ErasureReport) -> None:
        self.report = report


# Always reported, in this order, even when zero: the kinds of rows an erasure is about.
REPORTED = (
    "recommendations.Interaction",
    "recommendations.RecommendationSet",
    "recommendations.SegmentMembership",
    "bulletins.Delivery",
    "bulletins.Click",
    "bulletins.Open",
    "bulletins.Conversion",
    "bulletins.Unsubscribe",
    "recommendations.EndUser",
)


def user_forget(*, user: EndUser, dry_run: bool = False) -> ErasureReport:
    """Erase `user` and everything the service holds of them, keeping aggregate counts.

    Idempotent: a user already forgotten (the row is gone) removes and adds nothing. With
    `dry_run`, everything is done and rolled back: the report says what a real run removes.
    """
    try:
        with transaction.atomic():
            report = _forget(user, dry_run=dry_run)
            if dry_run:
                raise _DryRun(report)
    except _DryRun as done:
        return done.report
    if report.found:
        logger.info("erased end user #%s: %s", user.pk, dict(report.removed))
    return report


def users_forget(*, users) -> list[ErasureReport]:
    """Erase each of `users` (a queryset or list), each in its own transaction: one that
    fails leaves the others erased, in the order they were stored (the report lists them so,
    whatever order the database hands a queryset back in). For admin's "Forget selected users"
    action."""
    ordered = users.order_by("pk") if hasattr(users, "order_by") else users
    return [user_forget(user=user) for user in list(ordered)]


def _forget(user: EndUser, *, dry_run: bool) -> ErasureReport:
    locked = EndUser.objects.select_for_update().filter(pk=user.pk).first()
    if locked is None:
        return ErasureReport(user.external_id, dry_run, False, {}, {}, 0)
    keys = user_cache_keys(locked)
    erased = Erased()
    # Other apps first: they count what the user added before any of it goes.
    for _receiver, answer in user_forgetting.send(sender=EndUser, user=locked):
        if isinstance(answer, Erased):
            erased.add(answer)
    for queryset in (
        Interaction.objects.filter(user=locked),
        RecommendationSet.objects.filter(user=locked),
        SegmentMembership.objects.filter(user=locked),
    ):
        erased.removed.update(queryset.delete()[1])
    _admin_history_scrub(locked)
    erased.removed.update(EndUser.objects.filter(pk=locked.pk).delete()[1])
    transaction.on_commit(lambda: _cache_drop(locked.pk, keys))
    removed = {label: erased.removed.get(label, 0) for label in REPORTED}
    removed |= {label: n for label, n in erased.removed.items() if n and label not in removed}
    return ErasureReport(
        external_id=locked.external_id,
        dry_run=dry_run,
        found=True,
        removed=removed,
        kept={label: n for label, n in erased.kept.items() if n},
        cache_keys=len(keys),
    )


def user_cache_keys(user: EndUser) -> list[str]:
    """Every cache key that may hold one of the user's lists: the batch's and each served
    source's per placement, the item-page lists of the items they interacted with (where
    the widget showed similar items), and their pending refresh. A served list for another
    item page expires within API_SERVED_CACHE_SECONDS."""
    external_id = user.external_id
    placements = list(Placement.objects.values_list("slug", "strategy"))
    seen_items = [""]
    if any(strategy == Placement.Strategy.SIMILAR_ITEMS for _, strategy in placements):
        seen_items += list(
            Interaction.objects.filter(user=user)
            .values_list("item__external_id", flat=True)
            .distinct()
        )
    keys = [refresh_pending_key(user.pk)]
    for slug, strategy in placements:
        keys.append(recommendations_cache_key(placement_slug=slug, user_external_id=external_id))
        items = seen_items if strategy == Placement.Strategy.SIMILAR_ITEMS else [""]
        keys += [
            served_cache_key(
                placement_slug=slug, source=source, user_external_id=external_id, item_id=item
            )
            for source in SERVED_SOURCES
            for item in items
        ]
    return keys


def _cache_drop(user_pk: int, keys: list[str]) -> None:
    try:
        cache.delete_many(keys)
    except CACHE_ERRORS as error:  # the erasure is committed; say what is left
        logger.warning(
            "erased end user #%s, but the cache is unavailable: their cached lists expire "
            "on their own (RECOMMENDATIONS_CACHE_SECONDS): %s",
            user_pk,
            error,
        )


def _admin_history_scrub(user: EndUser) -> None:
    """Admin's history of the user's row keeps who changed what and when (accountability),
    but no longer names them."""
    LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(EndUser), object_id=str(user.pk)
    ).update(object_repr=ERASED_REPR)


def _plural(label: str, count: int) -> str:
    model = apps.get_model(label)
    return str(model._meta.verbose_name if count == 1 else model._meta.verbose_name_plural)
