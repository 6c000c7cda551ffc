"""One decorator for every Celery task of the project, so each task states its time limit, its
acknowledgement and what it retries, and nothing else is written twice (as Sentry's
`instrumented_task`).

- `time_limit`: seconds before the worker kills the task; the soft limit, which raises
  `SoftTimeLimitExceeded` inside it, comes a little earlier. No limit may exceed
  `CELERY_TASK_TIME_LIMIT_MAX`, which the broker's visibility timeout stays above.
- `acks_late`: acknowledge the message after the task ran, so a worker that dies mid-task
  hands it to another. Only for tasks a second delivery cannot harm (idempotent ones).
- `retry_for`: exceptions retried with exponential backoff and jitter, `max_retries` times.
"""

from collections.abc import Callable

from celery import shared_task
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import InterfaceError, OperationalError

# A dropped or restarting database connection: the next attempt opens a new one.
DATABASE_ERRORS = (OperationalError, InterfaceError)


def soft_time_limit(time_limit: int) -> int:
    """The soft limit for a hard `time_limit`: a minute before it, or a tenth of it if shorter."""
    return time_limit - min(60, max(1, time_limit // 10))


def recsite_task(
    *,
    time_limit: int,
    acks_late: bool,
    retry_for: tuple[type[BaseException], ...] = (),
    max_retries: int = 5,
    retry_backoff: int | bool = True,
    retry_backoff_max: int = 600,
    **options,
) -> Callable:
    if time_limit > settings.CELERY_TASK_TIME_LIMIT_MAX:
        raise ImproperlyConfigured(
            f"a task's time limit ({time_limit} s) exceeds CELERY_TASK_TIME_LIMIT_MAX "
            f"({settings.CELERY_TASK_TIME_LIMIT_MAX} s)"
        )
    retry_options = (
        {
            "autoretry_for": retry_for,
            "retry_backoff": retry_backoff,
            "retry_backoff_max": retry_backoff_max,
            "retry_jitter": True,
            "max_retries": max_retries,
        }
        if retry_for
        else {}
    )
    return shared_task(
        time_limit=time_limit,
        soft_time_limit=soft_time_limit(time_limit),
        acks_late=acks_late,
        **retry_options,
        **options,
    )
