"""Computing and storing every user's lists, in shards, and refreshing one user after events.

The batch path and the refresh path share `lists_write`, so a list means the same thing
whichever path wrote it: the database row is the record, the cache is the fast copy.
"""

import logging
import time
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnavailable
from redis.exceptions import RedisError
from tqdm import tqdm

from recommendations import selectors
from recommendations.models import (
    EndUser,
    ModelVersion,
    Placement,
    RecommendationRun,
    RecommendationSet,
    SegmentMembership,
)
from recommendations.services.placements import placement_lists
from recommendations.services.training import active_model, model_load

logger = logging.getLogger(__name__)

# Redis holds the cache and the Celery broker. When it is down or restarting the database is
# still the record, so callers go on without it rather than fail a request or a task whose
# rows are committed: a cache read that fails is a miss, a cache write that fails leaves the
# database row to serve, and a refresh that cannot be queued is logged and left to the
# nightly batch, which recomputes every list.
CACHE_ERRORS = (RedisError, OSError)
QUEUE_ERRORS = (BrokerUnavailable, RedisError, OSError)


REFRESH_CHUNK_USERS = 50  # users refreshed by one task (about 10 ms each)


class NoActiveModel(Exception):
    """Nothing to compute with until a model version is trained and activated."""


def recommendations_cache_key(*, placement_slug: str, user_external_id: str) -> str:
    """Where a user's in-house list for a placement is cached, as the batch or a refresh
    computed it."""
    return f"recs:v1:{placement_slug}:{user_external_id}"


# The lists the API serves from other sources (blend, Personalize, a holdout, a fallback, a
# placement computed on demand) are cached under their own keys for a short while; writing a
# user's in-house lists drops these, so a refresh shows at once whatever the source.
SERVED_SOURCES = ("inhouse", "personalize", "blend", "trending")


def served_cache_key(
    *, placement_slug: str, source: str, user_external_id: str, item_id: str = ""
) -> str:
    return f"served:v1:{placement_slug}:{source}:{user_external_id}:{item_id}"


@dataclass(frozen=True)
class Shard:
    pk_from: int
    pk_to: int


def recommendation_run_start(
    *, shard_users: int | None = None
) -> tuple[RecommendationRun, list[Shard]]:
    """Create a run over every user, split into contiguous primary-key ranges."""
    found = active_model()
    if found is None:
        raise NoActiveModel("no active model version: train one first (manage.py train)")
    shard_users = shard_users or settings.RECOMMEND_SHARD_USERS
    pks = np.fromiter(EndUser.objects.order_by("pk").values_list("pk", flat=True), dtype=np.int64)
    shards = [
        Shard(int(pks[start]), int(pks[min(start + shard_users, len(pks)) - 1]))
        for start in range(0, len(pks), shard_users)
    ]
    run = RecommendationRun.objects.create(
        model_version=found[0], shards=len(shards), users=len(pks)
    )
    return run, shards


def recommendation_shard_compute(*, run_id: int, shard: Shard) -> int:
    """Compute and store the lists of one shard's users; returns how many lists were written.

    Idempotent: a redelivered shard overwrites the same rows with the same lists.
    """
    run = RecommendationRun.objects.select_related("model_version").get(pk=run_id)
    model = model_load(run.model_version)
    users = users_frame(EndUser.objects.filter(pk__range=(shard.pk_from, shard.pk_to)))
    written = 0
    if len(users):
        segments = segments_of(users)
        lists = {
            placement: placement_lists(placement, model, users, segments=segments)
            for placement in batch_placements()
        }
        written = lists_write(users=users, lists=lists, model_version=run.model_version)
    _shard_done(run_id=run_id, shard=shard, written=written)
    return written


@transaction.atomic
def _shard_done(*, run_id: int, shard: Shard, written: int) -> None:
    """Count a shard once, even when a redelivered task computes it again."""
    run = RecommendationRun.objects.select_for_update().get(pk=run_id)
    if shard.pk_from in run.completed_shards:
        return
    run.completed_shards.append(shard.pk_from)
    run.shards_done = len(run.completed_shards)
    run.lists_written += written
    run.save(update_fields=["completed_shards", "shards_done", "lists_written"])


def recommendations_compute_all_in_process(
    *, shard_users: int | None = None, progress: bool = False
) -> RecommendationRun:
    """The whole batch in this process, shard after shard (no workers: the embedded default)."""
    run, shards = recommendation_run_start(shard_users=shard_users)
    for shard in tqdm(shards, desc="shards", unit="shard", disable=not progress):
        recommendation_shard_compute(run_id=run.pk, shard=shard)
    return recommendation_run_finish(run_id=run.pk)


def recommendation_run_finish(*, run_id: int) -> RecommendationRun:
    RecommendationRun.objects.filter(pk=run_id).update(
        status=RecommendationRun.Status.DONE, finished_at=timezone.now()
    )
    return RecommendationRun.objects.get(pk=run_id)


def recommendations_refresh_user(*, user_pk: int) -> int:
    """Recompute one user's lists from their latest events, without refitting the model."""
    # Events that arrive from now on schedule a new refresh; this one reads what came before.
    try:
        cache.delete(_refresh_pending_key(user_pk))
    except CACHE_ERRORS as error:  # the flag expires on its own
        logger.warning(
            "Cache unavailable, refresh flag of user %s left to expire: %s", user_pk, error
        )
    found = active_model()
    users = users_frame(EndUser.objects.filter(pk=user_pk))
    if found is None or users.empty:
        return 0
    version, model = found
    history = selectors.user_history_frame(user_pk)
    segments = segments_of(users)
    lists = {
        placement: placement_lists(placement, model, users, segments=segments, history=history)
        for placement in batch_placements()
    }
    return lists_write(users=users, lists=lists, model_version=version)


def users_frame(queryset) -> pd.DataFrame:
    return pd.DataFrame(
        queryset.order_by("pk").values_list("pk", "external_id", "personalization_opt_out"),
        columns=["pk", "external_id", "opt_out"],
    ).astype({"opt_out": bool})


def segments_of(users: pd.DataFrame) -> dict[int, set[str]]:
    """Segment id -> the external ids of these users in it (for segment-scoped rules)."""
    segments: dict[int, set[str]] = {}
    memberships = SegmentMembership.objects.filter(user_id__in=users["pk"].tolist())
    for segment_id, external_id in memberships.values_list("segment_id", "user__external_id"):
        segments.setdefault(segment_id, set()).add(external_id)
    return segments


def batch_placements() -> list[Placement]:
    return list(Placement.objects.filter(is_active=True, strategy=Placement.Strategy.PERSONALIZED))


def lists_write(
    *,
    users: pd.DataFrame,
    lists: dict[Placement, dict[str, list[dict]]],
    model_version: ModelVersion,
) -> int:
    """Store the users' lists (the record) and cache them (the fast copy), `RECOMMEND_WRITE_CHUNK`
    users at a time, each chunk its own transaction, so no single write holds PostgreSQL or
    Redis for long while the API reads beside the batch. With `RECOMMEND_WRITE_PAUSE_RATIO`
    the batch rests after each chunk for that many times as long as the chunk took: the work
    it gives PostgreSQL and Redis, which no nice value of the batch's reaches, is spread out.
    Idempotent: writing the same lists again overwrites the same rows."""
    now = timezone.now()
    pks = [int(pk) for pk in users["pk"]]
    external_ids = list(users["external_id"])
    chunk = settings.RECOMMEND_WRITE_CHUNK
    # Never rest inside a caller's transaction: its locks would be held all the while.
    in_transaction = transaction.get_connection().in_atomic_block
    pause_ratio = 0.0 if in_transaction else settings.RECOMMEND_WRITE_PAUSE_RATIO
    written = 0
    for start in range(0, len(pks), chunk):
        began = time.monotonic()
        written += _lists_write_chunk(
            pks=pks[start : start + chunk],
            external_ids=external_ids[start : start + chunk],
            lists=lists,
            model_version=model_version,
            now=now,
        )
        if pause_ratio and start + chunk < len(pks):
            time.sleep(pause_ratio * (time.monotonic() - began))
    return written


@transaction.atomic
def _lists_write_chunk(
    *,
    pks: list[int],
    external_ids: list[str],
    lists: dict[Placement, dict[str, list[dict]]],
    model_version: ModelVersion,
    now: datetime,
) -> int:
    rows, cached, stale = [], {}, []
    for placement, by_user in lists.items():
        for pk, external_id in zip(pks, external_ids, strict=True):
            shown = by_user.get(external_id, [])
            rows.append(
                RecommendationSet(
                    user_id=pk,
                    placement=placement,
                    source=model_version.source,
                    model_version=model_version,
                    items=shown,
                    computed_at=now,
                )
            )
            key = recommendations_cache_key(
                placement_slug=placement.slug, user_external_id=external_id
            )
            cached[key] = {
                "items": shown,
                "source": model_version.source,
                "model_version": model_version.pk,
                "computed_at": now.isoformat(),
                "user_pk": pk,
            }
            stale.extend(
                served_cache_key(
                    placement_slug=placement.slug, source=source, user_external_id=external_id
                )
                for source in SERVED_SOURCES
            )
    RecommendationSet.objects.bulk_create(
        rows,
        batch_size=2000,
        update_conflicts=True,
        unique_fields=["user", "placement", "source"],
        update_fields=["items", "model_version", "computed_at"],
    )

    def cache_write() -> None:
        try:
            cache.set_many(cached, timeout=settings.RECOMMENDATIONS_CACHE_SECONDS)
            cache.delete_many(stale)
        except CACHE_ERRORS as error:
            # The lists are committed and the API falls back to them on a miss; a Redis that
            # kept its data through the outage serves its older copies until the next batch.
            logger.warning(
                "Cache unavailable, %d list(s) stored in the database only: %s", len(cached), error
            )

    transaction.on_commit(cache_write)
    return len(rows)


def recommendations_refresh_enqueue(*, user_pks: set[int]) -> int:
    """Schedule a refresh of each user's lists, at most one pending per user at a time.

    A batch of events from many users costs two cache round trips and one task per
    `REFRESH_CHUNK_USERS` users, not a round trip and a task per user: the events API's
    throughput depends on it."""
    if not settings.REALTIME_REFRESH or not user_pks:
        return 0
    from recommendations.tasks import recommendations_refresh_users_task

    keys = {_refresh_pending_key(user_pk): user_pk for user_pk in user_pks}
    try:
        pending = cache.get_many(list(keys))
        fresh = sorted(user_pk for key, user_pk in keys.items() if key not in pending)
        # Two batches racing here may both queue a user: a refresh is idempotent.
        cache.set_many(
            {_refresh_pending_key(user_pk): 1 for user_pk in fresh},
            timeout=settings.REFRESH_DEBOUNCE_SECONDS * 10,
        )
        for start in range(0, len(fresh), REFRESH_CHUNK_USERS):
            # Nobody waits for the result: without ignore_result, Celery first subscribes to
            # it on the result backend, which retries for 20 s when Redis is down.
            recommendations_refresh_users_task.apply_async(
                (fresh[start : start + REFRESH_CHUNK_USERS],),
                countdown=settings.REFRESH_DEBOUNCE_SECONDS,
                ignore_result=True,
            )
    except QUEUE_ERRORS as error:
        # The events are committed; only the early refresh is lost.
        logger.warning(
            "Redis unavailable, refresh of %d user(s) not queued; the nightly batch "
            "recomputes their lists: %s",
            len(user_pks),
            error,
        )
        return 0
    return len(fresh)


def _refresh_pending_key(user_pk: int) -> str:
    return f"refresh-pending:{user_pk}"
