"""Celery tasks: thin wrappers over bulletins.services.runs. A run fans out over one task per
shard (prepare, then send) and a chord closes it; a periodic recovery task resumes runs whose
workers died, or whose shard failed for good."""

import logging

from django.conf import settings
from django.utils import timezone

from bulletins.models import Bulletin, BulletinRun
from bulletins.services.attribution import conversions_attribute
from bulletins.services.platforms import PlatformNotConfigured
from bulletins.services.runs import (
    BulletinNotReady,
    bulletin_run_fail,
    bulletin_run_finish,
    bulletin_run_note_error,
    bulletin_run_start,
    bulletin_runs_stalled,
    bulletin_shard_prepare,
    bulletin_shard_send,
    retry_waiting,
    run_shards,
)
from recsite.errors import QUEUE_ERRORS
from recsite.sharding import Shard, shards_fan_out
from recsite.task_options import DATABASE_ERRORS, recsite_task

logger = logging.getLogger(__name__)


def run_dispatch(run: BulletinRun) -> None:
    """One task per shard, and the finish task once all of them are done."""
    shards_fan_out(
        run_id=run.pk,
        shards=run_shards(run),
        shard_task=bulletin_shard_task,
        finish_task=bulletin_run_finish_task,
        fail_task=bulletin_run_shard_failed_task,
    )


# Without a run key each delivery starts a new run: acknowledged on receipt.
@recsite_task(time_limit=300, acks_late=False)
def bulletin_send_task(bulletin_id: int, trigger: str = "admin", run_key: str = "") -> int:
    bulletin = Bulletin.objects.get(pk=bulletin_id)
    run, created = bulletin_run_start(bulletin=bulletin, trigger=trigger, run_key=run_key)
    if created:
        run_dispatch(run)
    return run.pk


@recsite_task(time_limit=300, acks_late=False, retry_for=DATABASE_ERRORS, max_retries=5, bind=True)
def bulletin_scheduled_send_task(self, bulletin_id: int, tick: str = "") -> int | None:
    """The beat entry of a bulletin. The run key is the minute of the tick, so a tick
    delivered twice starts one run; a retry (the database dropped the connection) keeps the
    tick it was first given, so it starts that tick's run, not the next minute's."""
    if not tick:
        tick = timezone.now().strftime("%Y-%m-%dT%H:%M")
        # Autoretry resends the arguments it was called with: put the tick among them.
        self.request.kwargs = {**(self.request.kwargs or {}), "tick": tick}
    try:
        return bulletin_send_task(bulletin_id, BulletinRun.Trigger.SCHEDULE, f"schedule:{tick}")
    except (Bulletin.DoesNotExist, BulletinNotReady):
        return None


@recsite_task(time_limit=3600, acks_late=True, retry_for=DATABASE_ERRORS)
def bulletin_shard_task(run_id: int, pk_from: int, pk_to: int) -> dict:
    shard = Shard(pk_from, pk_to)
    prepared = bulletin_shard_prepare(run_id=run_id, shard=shard)
    try:
        counts = bulletin_shard_send(run_id=run_id, shard=shard)
    except PlatformNotConfigured as error:
        bulletin_run_fail(run_id=run_id, error=str(error))
        return {"prepared": prepared, "error": str(error)}
    return {"prepared": prepared, "sent": counts.sent, "failed": counts.failed}


@recsite_task(time_limit=120, acks_late=True, retry_for=DATABASE_ERRORS, bind=True)
def bulletin_run_finish_task(self, run_id: int) -> str:
    run = bulletin_run_finish(run_id=run_id)
    # Run eagerly, the countdown would fire at once, in a loop: there "resume" retries.
    eager = self.request.is_eager or self.app.conf.task_always_eager
    if run.status == BulletinRun.Status.SENDING and retry_waiting(run_id) and not eager:
        bulletin_run_resume_task.apply_async((run_id,), countdown=settings.BULLETIN_RETRY_SECONDS)
    return run.status


@recsite_task(time_limit=60, acks_late=True, retry_for=DATABASE_ERRORS)
def bulletin_run_shard_failed_task(request, exc, traceback, run_id: int) -> str:
    """The chord's errback: a shard failed for good. Its deliveries are all claimed or
    settled one by one, so the run is left open with the reason noted, and the recovery
    task resumes it after the lease: what was not sent is sent then, nothing twice."""
    return bulletin_run_note_error(run_id=run_id, error=f"a shard failed: {exc}").status


# Dispatching again is harmless (shards skip what is done), but nothing needs it twice.
@recsite_task(time_limit=120, acks_late=False)
def bulletin_run_resume_task(run_id: int) -> str:
    run = BulletinRun.objects.get(pk=run_id)
    if run.status in (BulletinRun.Status.PREPARING, BulletinRun.Status.SENDING):
        BulletinRun.objects.filter(pk=run_id).update(heartbeat_at=timezone.now())
        run_dispatch(run)
    return run.status


@recsite_task(time_limit=120, acks_late=False)
def bulletin_runs_recover_task() -> list[int]:
    """Resume open runs nobody has worked on for a lease (their worker died)."""
    resumed = []
    for run in bulletin_runs_stalled():
        bulletin_run_resume_task.delay(run.pk)
        resumed.append(run.pk)
    return resumed


# Attributing the same events again finds their conversions already recorded.
@recsite_task(
    time_limit=300,
    acks_late=True,
    retry_for=DATABASE_ERRORS,
    # Nobody reads it; storing none also spares the events API the result backend's 20 s of
    # reconnecting when Redis is down.
    ignore_result=True,
)
def conversions_attribute_task(event_ids: list[str]) -> int:
    return conversions_attribute(event_ids=event_ids)


def conversion_events_enqueue(sender, event_ids: list[str], **kwargs) -> None:
    """Receiver of `recommendations.signals.conversion_events_stored` (sent after commit).
    With Redis down the events are stored all the same and attributed later by
    `manage.py attribute_conversions`."""
    try:
        conversions_attribute_task.delay(list(event_ids))
    except QUEUE_ERRORS as error:
        logger.warning(
            "Redis unavailable, attribution of %d conversion event(s) not queued; "
            "`manage.py attribute_conversions --days N` attributes them: %s",
            len(event_ids),
            error,
        )
