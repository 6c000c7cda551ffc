"""Queueing refreshes of users' lists after their events, debounced per user.

The refresh itself is `recommendations.services.recommending.recommendations_refresh_user`,
run by `recommendations_refresh_users_task`.
"""

import logging

from django.conf import settings
from django.core.cache import cache

from recommendations.tasks import recommendations_refresh_users_task
from recsite.cache_keys import refresh_pending_key
from recsite.errors import QUEUE_ERRORS

logger = logging.getLogger(__name__)

REFRESH_CHUNK_USERS = 50  # users refreshed by one task (about 10 ms each)


def recommendations_refresh_enqueue(*, user_pks: set[int]) -> int:
    """Schedule a refresh of each user's lists, at most one pending per user at a time.

    A batch of events from many users costs two cache round trips and one task per
    `REFRESH_CHUNK_USERS` users, not a round trip and a task per user: the events API's
    throughput depends on it."""
    if not settings.REALTIME_REFRESH or not user_pks:
        return 0
    keys = {refresh_pending_key(user_pk): user_pk for user_pk in user_pks}
    try:
        pending = cache.get_many(list(keys))
        fresh = sorted(user_pk for key, user_pk in keys.items() if key not in pending)
        # Two batches racing here may both queue a user: a refresh is idempotent.
        cache.set_many(
            {refresh_pending_key(user_pk): 1 for user_pk in fresh},
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
