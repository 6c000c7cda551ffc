"""Celery tasks: thin wrappers that call services. Options come from `recsite_task`: each task
says its time limit, whether a second delivery is harmless (`acks_late`) and what it retries."""

from celery import Task

from integrations.personalize.errors import PersonalizeError
from recommendations.models import RecommendationRun
from recommendations.services.importing import data_import
from recommendations.services.personalize import (
    personalize_run_advance,
    personalize_run_fail,
    personalize_run_start,
)
from recommendations.services.recommending import (
    recommendation_run_fail,
    recommendation_run_finish,
    recommendation_run_start,
    recommendation_run_touch,
    recommendation_runs_stalled,
    recommendation_shard_compute,
    recommendation_shards_left,
    recommendations_refresh_user,
)
from recommendations.services.segments import segments_refresh
from recommendations.services.training import model_version_train
from recsite.sharding import Shard, shards_fan_out
from recsite.task_options import DATABASE_ERRORS, recsite_task


# Idempotent: a redelivery after a worker crash imports nothing twice.
@recsite_task(time_limit=2 * 3600, acks_late=True)
def data_import_task(
    users: str | None = None,
    items: str | None = None,
    interactions: str | None = None,
    skip_invalid: bool = False,
) -> dict:
    """Import CSV files (paths the worker can read, or s3:// URIs)."""
    report = data_import(
        users=users, items=items, interactions=interactions, skip_invalid=skip_invalid
    )
    return report.as_dict()


# Each delivery trains a new version: acknowledged on receipt, never run twice.
@recsite_task(time_limit=4 * 3600, acks_late=False)
def model_train_task(
    params: dict | None = None, tune: bool = False, recompute: bool = True
) -> dict:
    """Train a version; when it becomes active, recompute every user's lists with it."""
    version = model_version_train(params=params, tune=tune)
    if version.is_active and recompute:
        recommendations_compute_all_task.delay()
    return {"model_version": version.pk, "status": version.status, "decision": version.decision}


# Each delivery starts a new run: acknowledged on receipt.
@recsite_task(time_limit=600, acks_late=False)
def recommendations_compute_all_task(shard_users: int | None = None) -> int:
    """Fan the users out over shard tasks; a chord closes the run when every shard is done."""
    run, _ = recommendation_run_start(shard_users=shard_users)
    recommendation_run_dispatch(run)
    return run.pk


def recommendation_run_dispatch(run: RecommendationRun) -> None:
    """Send the run's shards not done yet, with the finish task after them and the fail task
    as the chord's errback. A run that cannot be dispatched fails with the reason."""
    try:
        shards_fan_out(
            run_id=run.pk,
            shards=recommendation_shards_left(run),
            shard_task=recommendations_compute_shard_task,
            finish_task=recommendation_run_finish_task,
            fail_task=recommendation_run_fail_task,
        )
    except Exception as error:
        recommendation_run_fail(run_id=run.pk, reason=f"could not run its shards: {error!r}")
        raise


@recsite_task(time_limit=1800, acks_late=True, retry_for=DATABASE_ERRORS)
def recommendations_compute_shard_task(run_id: int, pk_from: int, pk_to: int) -> int:
    return recommendation_shard_compute(run_id=run_id, shard=Shard(pk_from, pk_to))


@recsite_task(time_limit=60, acks_late=True, retry_for=DATABASE_ERRORS)
def recommendation_run_finish_task(run_id: int) -> str:
    return recommendation_run_finish(run_id=run_id).status


@recsite_task(time_limit=60, acks_late=True, retry_for=DATABASE_ERRORS)
def recommendation_run_fail_task(request, exc, traceback, run_id: int) -> str:
    """The chord's errback: a shard failed for good (its retries used up, or an error nothing
    retries), or the finish task did. Celery calls it with the failed request and error."""
    return recommendation_run_fail(run_id=run_id, reason=str(exc) or repr(exc)).status


@recsite_task(time_limit=120, acks_late=False)
def recommendation_runs_recover_task() -> list[int]:
    """Resume running runs no shard has reported on for a lease (their workers died): their
    shards not done yet are sent again."""
    resumed = []
    for run in recommendation_runs_stalled():
        recommendation_run_touch(run_id=run.pk)
        recommendation_run_dispatch(run)
        resumed.append(run.pk)
    return resumed


@recsite_task(time_limit=60, acks_late=True, retry_for=DATABASE_ERRORS, max_retries=3)
def recommendations_refresh_users_task(user_pks: list[int]) -> int:
    return sum(recommendations_refresh_user(user_pk=user_pk) for user_pk in user_pks)


# Recomputes every membership from the data: a second delivery writes the same rows.
@recsite_task(time_limit=3600, acks_late=True)
def segments_refresh_task(learn: bool = True) -> dict:
    return segments_refresh(learn=learn)


class PersonalizeRunTask(Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        """Retries used up, or an error nothing retries: the run fails with the reason. Left
        "running", nothing would ever advance it again."""
        run_id = args[0] if args else kwargs["run_id"]
        attempts = self.request.retries + 1
        personalize_run_fail(run_id=run_id, reason=f"gave up after {attempts} attempts: {exc}")


# Each step finds the jobs a previous delivery started (by name) before starting one.
@recsite_task(
    time_limit=1800,
    acks_late=True,
    retry_for=(PersonalizeError, *DATABASE_ERRORS),
    max_retries=8,
    retry_backoff=30,
    retry_backoff_max=1800,
    base=PersonalizeRunTask,
    bind=True,
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


# Each delivery starts a new run: acknowledged on receipt.
@recsite_task(time_limit=600, acks_late=False)
def personalize_start_task() -> int:
    """Start a Personalize run (the weekly schedule); its steps follow on their own."""
    run = personalize_run_start()
    personalize_run_task.delay_on_commit(run.pk)
    return run.pk
