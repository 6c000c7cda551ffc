"""Computing and storing every user's lists, in shards, and refreshing one user after events.

The batch path and the refresh path share `lists_write`, so a list means the same thing
whichever path wrote it: the database row is the record, the cache is the fast copy.

A run stores its shards' bounds and a heartbeat: a run whose shard fails for good is marked
failed with the reason, and one whose workers died is resumed by beat with the shards not yet
done (`recommendation_runs_stalled`).
"""

import datetime as dt
import logging
import time
from collections.abc import Iterable
from datetime import datetime

import pandas as pd
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from tqdm import tqdm

from recommendations import selectors
from recommendations.models import (
    EndUser,
    ModelVersion,
    Placement,
    RecommendationRun,
    RecommendationSet,
)
from recommendations.services.placements import placement_lists
from recommendations.services.training import active_model, model_load
from recsite.cache_keys import (
    SERVED_SOURCES,
    recommendations_cache_key,
    refresh_pending_key,
    served_cache_key,
)
from recsite.data_generation import data_generation_forget
from recsite.errors import CACHE_ERRORS
from recsite.sharding import Shard, pk_shards, shards_from_bounds

logger = logging.getLogger(__name__)

# For a version that did not record the newest interaction it read (older ones): events
# received this long before it was created may be missing from it, so the batch treats them
# as new.
FIT_READ_MARGIN = dt.timedelta(minutes=5)


class NoActiveModel(Exception):
    """Nothing to compute with until a model version is trained and activated."""


def recommendation_run_start(
    *, shard_users: int | None = None
) -> tuple[RecommendationRun, list[Shard]]:
    """Create a run over every user, split into contiguous primary-key ranges."""
    found = active_model()
    if found is None:
        raise NoActiveModel("no active model version: train one first (manage.py train)")
    users, shards = pk_shards(
        EndUser.objects.all(), shard_users=shard_users or settings.RECOMMEND_SHARD_USERS
    )
    run = RecommendationRun.objects.create(
        model_version=found[0],
        shards=len(shards),
        shard_bounds=[shard.as_bounds() for shard in shards],
        users=users,
        heartbeat_at=timezone.now(),
    )
    data_generation_forget()  # this process's cached lists give way to the run's
    return run, shards


def recommendation_shards_left(run: RecommendationRun) -> list[Shard]:
    """The run's shards not done yet: all of them at the start, the rest on a resume."""
    done = set(run.completed_shards)
    return [shard for shard in shards_from_bounds(run.shard_bounds) if shard.pk_from not in done]


def recommendation_shard_compute(*, run_id: int, shard: Shard) -> int:
    """Compute and store the lists of one shard's users; returns how many lists were written.

    Idempotent: a redelivered shard overwrites the same rows with the same lists.
    """
    run = RecommendationRun.objects.select_related("model_version").get(pk=run_id)
    if run.status != RecommendationRun.Status.RUNNING:
        return 0  # failed meanwhile: its lists are no longer wanted
    model = model_load(run.model_version)
    users = selectors.user_keys_frame(
        EndUser.objects.filter(pk__range=(shard.pk_from, shard.pk_to))
    )
    written = 0
    if len(users):
        segments = selectors.segment_members(users)
        # The refresh path already keeps what users engaged with since the fit out of their
        # lists; the batch must not bring it back.
        version = run.model_version
        consumed = selectors.items_consumed_since(
            users,
            after_pk=version.last_interaction_pk,
            since=version.created_at - FIT_READ_MARGIN,
        )
        lists = {
            placement: placement_lists(
                placement, model, users, segments=segments, consumed_since_fit=consumed
            )
            for placement in selectors.personalized_placements()
        }
        written = lists_write(users=users, lists=lists, model_version=run.model_version)
    recommendation_shard_record(run_id=run_id, shard=shard, written=written)
    return written


@transaction.atomic
def recommendation_shard_record(*, run_id: int, shard: Shard, written: int) -> None:
    """Count a shard once, even when a redelivered task computes it again."""
    run = RecommendationRun.objects.select_for_update().get(pk=run_id)
    if shard.pk_from in run.completed_shards:
        return
    run.completed_shards.append(shard.pk_from)
    run.shards_done = len(run.completed_shards)
    run.lists_written += written
    run.heartbeat_at = timezone.now()
    run.save(update_fields=["completed_shards", "shards_done", "lists_written", "heartbeat_at"])


def recommendations_compute_all_in_process(
    *, shard_users: int | None = None, progress: bool = False
) -> RecommendationRun:
    """The whole batch in this process, shard after shard (no workers: the embedded default)."""
    run, shards = recommendation_run_start(shard_users=shard_users)
    for shard in tqdm(shards, desc="shards", unit="shard", disable=not progress):
        try:
            recommendation_shard_compute(run_id=run.pk, shard=shard)
        except Exception as error:
            recommendation_run_fail(run_id=run.pk, reason=f"shard {shard}: {error!r}")
            raise
    return recommendation_run_finish(run_id=run.pk)


def recommendation_run_finish(*, run_id: int) -> RecommendationRun:
    """Close a running run whose shards are all done (a failed run stays failed)."""
    RecommendationRun.objects.filter(pk=run_id, status=RecommendationRun.Status.RUNNING).update(
        status=RecommendationRun.Status.DONE, finished_at=timezone.now()
    )
    return RecommendationRun.objects.get(pk=run_id)


def recommendation_run_fail(*, run_id: int, reason: str) -> RecommendationRun:
    """Mark a running run failed with why; the first reason given is kept."""
    RecommendationRun.objects.filter(pk=run_id, status=RecommendationRun.Status.RUNNING).update(
        status=RecommendationRun.Status.FAILED, error=reason[:2000], finished_at=timezone.now()
    )
    return RecommendationRun.objects.get(pk=run_id)


def recommendation_runs_stalled(now: datetime | None = None) -> Iterable[RecommendationRun]:
    """Running runs no shard has reported on for a lease: their workers died."""
    lease = dt.timedelta(seconds=settings.RECOMMEND_RUN_LEASE_SECONDS)
    return RecommendationRun.objects.filter(
        status=RecommendationRun.Status.RUNNING,
        heartbeat_at__lte=(now or timezone.now()) - lease,
    )


def recommendation_run_touch(*, run_id: int) -> None:
    """Restart the run's lease (it is being resumed now)."""
    RecommendationRun.objects.filter(pk=run_id).update(heartbeat_at=timezone.now())


def recommendations_refresh_user(*, user_pk: int) -> int:
    """Recompute one user's lists from their latest events, without refitting the model."""
    # Events that arrive from now on schedule a new refresh; this one reads what came before.
    try:
        cache.delete(refresh_pending_key(user_pk))
    except CACHE_ERRORS as error:  # the flag expires on its own
        logger.warning(
            "Cache unavailable, refresh flag of user %s left to expire: %s", user_pk, error
        )
    found = active_model()
    users = selectors.user_keys_frame(EndUser.objects.filter(pk=user_pk))
    if found is None or users.empty:
        return 0
    version, model = found
    history = selectors.user_history_frame(user_pk)
    segments = selectors.segment_members(users)
    lists = {
        placement: placement_lists(placement, model, users, segments=segments, history=history)
        for placement in selectors.personalized_placements()
    }
    return lists_write(users=users, lists=lists, model_version=version)


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
