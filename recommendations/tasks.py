"""Celery tasks: thin wrappers that call services."""

from celery import Task, chord, group, shared_task
from django.db import InterfaceError, OperationalError

from integrations.personalize.errors import PersonalizeError
from recommendations.services.importing import data_import
from recommendations.services.personalize import (
    personalize_run_advance,
    personalize_run_fail,
    personalize_run_start,
)
from recommendations.services.recommending import (
    Shard,
    recommendation_run_finish,
    recommendation_run_start,
    recommendation_shard_compute,
    recommendations_refresh_user,
)
from recommendations.services.segments import segments_refresh
from recommendations.services.training import model_version_train


@shared_task(time_limit=2 * 3600, soft_time_limit=2 * 3600 - 60)
def data_import_task(
    users: str | None = None,
    items: str | None = None,
    interactions: str | None = None,
    skip_invalid: bool = False,
) -> dict:
    """Import CSV files (paths the worker can read, or s3:// URIs). Idempotent, so a redelivery
    after a worker crash imports nothing twice."""
    report = data_import(
        users=users, items=items, interactions=interactions, skip_invalid=skip_invalid
    )
    return report.as_dict()


@shared_task(time_limit=4 * 3600, soft_time_limit=4 * 3600 - 60)
def model_train_task(
    params: dict | None = None, tune: bool = False, recompute: bool = True
) -> dict:
    """Train a version; when it becomes active, recompute every user's lists with it."""
    version = model_version_train(params=params, tune=tune)
    if version.is_active and recompute:
        recommendations_compute_all_task.delay()
    return {"model_version": version.pk, "status": version.status, "decision": version.decision}


@shared_task(time_limit=600, soft_time_limit=570)
def recommendations_compute_all_task(shard_users: int | None = None) -> int:
    """Fan the users out over shard tasks; a chord closes the run when every shard is done."""
    run, shards = recommendation_run_start(shard_users=shard_users)
    header = group(
        recommendations_compute_shard_task.si(run.pk, shard.pk_from, shard.pk_to)
        for shard in shards
    )
    chord(header)(recommendation_run_finish_task.si(run.pk))
    return run.pk


@shared_task(
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
    time_limit=1800,
    soft_time_limit=1740,
)
def recommendations_compute_shard_task(run_id: int, pk_from: int, pk_to: int) -> int:
    return recommendation_shard_compute(run_id=run_id, shard=Shard(pk_from, pk_to))


@shared_task(
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=5,
    time_limit=60,
    soft_time_limit=50,
)
def recommendation_run_finish_task(run_id: int) -> str:
    return recommendation_run_finish(run_id=run_id).status


@shared_task(
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=3,
    time_limit=60,
    soft_time_limit=50,
)
def recommendations_refresh_users_task(user_pks: list[int]) -> int:
    return sum(recommendations_refresh_user(user_pk=user_pk) for user_pk in user_pks)


@shared_task(acks_late=True, time_limit=3600, soft_time_limit=3540)
def segments_refresh_task(learn: bool = True) -> dict:
    return segments_refresh(learn=learn)


class PersonalizeRunTask(Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        """Retries used up, or an error nothing retries: the run fails with the reason. Left
        "running", nothing would ever advance it again."""
        run_id = args[0] if args else kwargs["run_id"]
        attempts = self.request.retries + 1
        personalize_run_fail(run_id=run_id, reason=f"gave up after {attempts} attempts: {exc}")


@shared_task(
    base=PersonalizeRunTask,
    bind=True,
    acks_late=True,
    autoretry_for=(PersonalizeError, OperationalError, InterfaceError),
    retry_backoff=30,
    retry_backoff_max=1800,
    retry_jitter=True,
    max_retries=8,
    time_limit=1800,
    soft_time_limit=1740,
)
def personalize_run_task(self, run_id: int) -> str:
    """Advance a Personalize run one step; check again later while its job runs."""
    wait = personalize_run_advance(run_id=run_id)
    if wait is None:
        return "ended"
    # In eager mode there is no worker to come back later: `manage.py personalize` polls.
    if not self.app.conf.task_always_eager:
        personalize_run_task.apply_async((run_id,), countdown=wait)
    return f"waiting {wait} s"


@shared_task(time_limit=600, soft_time_limit=570)
def personalize_start_task() -> int:
    """Start a Personalize run (the weekly schedule); its steps follow on their own."""
    run = personalize_run_start()
    personalize_run_task.delay_on_commit(run.pk)
    return run.pk
