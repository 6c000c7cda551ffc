"""A bulletin's schedule as a django-celery-beat periodic task, and the task beat runs."""

import datetime as dt
import json
from types import SimpleNamespace

import pytest
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from bulletins import tasks
from bulletins.models import Bulletin, BulletinRun
from bulletins.services.schedules import (
    SCHEDULED_SEND_TASK,
    bulletin_schedule_sync,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def monday_8am(db):
    return CrontabSchedule.objects.create(minute="0", hour="8", day_of_week="1", timezone="UTC")


@pytest.fixture
def bulletin(db):
    return Bulletin.objects.create(slug="daily", name="Daily", subject_template="Hi")


def schedule(bulletin, crontab, *, enabled=True):
    """Set the bulletin's own schedule to the crontab's times, as the admin form would."""
    if crontab is None:
        bulletin.send_frequency = "none"
    else:
        bulletin.send_frequency = "cron"
        bulletin.send_cron = " ".join(
            [
                crontab.minute,
                crontab.hour,
                crontab.day_of_month,
                crontab.month_of_year,
                crontab.day_of_week,
            ]
        )
        bulletin.send_timezone = str(crontab.timezone)
    bulletin.schedule_enabled = enabled
    bulletin.save()
    return bulletin_schedule_sync(bulletin=bulletin)


def bulletin_tasks():
    return PeriodicTask.objects.filter(task=SCHEDULED_SEND_TASK)


def test_enabled_schedule_creates_one_periodic_task_for_the_bulletin(bulletin, monday_8am):
    schedule(bulletin, monday_8am)

    task = bulletin_tasks().get()
    assert task.name == "Bulletin: daily"
    assert task.task == "bulletins.tasks.bulletin_scheduled_send_task"
    assert json.loads(task.args) == [bulletin.pk]
    assert task.crontab == monday_8am
    assert task.enabled
    bulletin.refresh_from_db()
    assert bulletin.periodic_task == task


def test_saving_again_keeps_one_task_and_follows_a_new_crontab(bulletin, monday_8am):
    schedule(bulletin, monday_8am)
    evening = CrontabSchedule.objects.create(minute="30", hour="18", timezone="UTC")

    schedule(bulletin, evening)

    assert bulletin_tasks().get().crontab == evening


def test_disabling_the_schedule_pauses_the_task(bulletin, monday_8am):
    schedule(bulletin, monday_8am)

    schedule(bulletin, monday_8am, enabled=False)

    assert bulletin_tasks().get().enabled is False


def test_removing_the_schedule_deletes_the_task(bulletin, monday_8am):
    schedule(bulletin, monday_8am)

    schedule(bulletin, None, enabled=False)

    assert not bulletin_tasks().exists()
    bulletin.refresh_from_db()
    assert bulletin.periodic_task is None


def test_a_bulletin_without_schedule_gets_no_task(bulletin):
    assert bulletin_schedule_sync(bulletin=bulletin) is None
    assert not bulletin_tasks().exists()


def test_deleting_the_bulletin_in_code_deletes_its_task(bulletin, monday_8am):
    schedule(bulletin, monday_8am)

    Bulletin.objects.filter(pk=bulletin.pk).delete()

    assert not bulletin_tasks().exists()


def test_a_new_bulletin_with_the_slug_of_a_deleted_one_takes_over_its_leftover_task(
    bulletin, monday_8am
):
    schedule(bulletin, monday_8am)
    Bulletin.objects.filter(pk=bulletin.pk).update(periodic_task=None)  # unlinked, left over
    Bulletin.objects.filter(pk=bulletin.pk).delete()
    again = Bulletin.objects.create(slug="daily", name="Daily again", subject_template="Hi")

    schedule(again, monday_8am)

    task = bulletin_tasks().get()
    assert json.loads(task.args) == [again.pk]


def test_scheduled_task_twice_in_the_same_minute_starts_one_run(weekly, mailbox, monkeypatch):
    tick = dt.datetime(2026, 3, 2, 8, 0, 1, tzinfo=dt.UTC)
    monkeypatch.setattr(tasks, "timezone", SimpleNamespace(now=lambda: tick))

    first = tasks.bulletin_scheduled_send_task(weekly.pk)
    second = tasks.bulletin_scheduled_send_task(weekly.pk)

    run = BulletinRun.objects.get()
    assert first == second == run.pk
    assert run.trigger == BulletinRun.Trigger.SCHEDULE
    assert run.status == BulletinRun.Status.DONE
    assert len(mailbox) == run.sent > 0


def test_scheduled_task_a_week_later_starts_a_new_run(weekly, mailbox, monkeypatch):
    for tick in (
        dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 9, 8, 0, tzinfo=dt.UTC),
    ):
        monkeypatch.setattr(tasks, "timezone", SimpleNamespace(now=lambda tick=tick: tick))
        tasks.bulletin_scheduled_send_task(weekly.pk)

    assert BulletinRun.objects.filter(trigger=BulletinRun.Trigger.SCHEDULE).count() == 2


def test_scheduled_task_of_a_deleted_bulletin_does_nothing(db):
    assert tasks.bulletin_scheduled_send_task(123_456) is None
    assert not BulletinRun.objects.exists()


def test_scheduled_task_of_a_bulletin_without_blocks_does_nothing(bulletin):
    assert tasks.bulletin_scheduled_send_task(bulletin.pk) is None
    assert not BulletinRun.objects.exists()


def test_a_tick_retried_after_a_dropped_connection_starts_its_own_minutes_run(
    weekly, mailbox, monkeypatch
):
    from django.db import OperationalError

    moments = iter(
        [
            dt.datetime(2026, 3, 2, 8, 0, 59, tzinfo=dt.UTC),  # the tick
            dt.datetime(2026, 3, 2, 8, 1, 30, tzinfo=dt.UTC),  # by the time of the retry
        ]
    )
    monkeypatch.setattr(tasks, "timezone", SimpleNamespace(now=lambda: next(moments)))
    real_send = tasks.bulletin_send_task
    attempts = []

    def drops_first(*args):
        attempts.append(args)
        if len(attempts) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real_send(*args)

    monkeypatch.setattr(tasks, "bulletin_send_task", drops_first)

    # Eagerly, Celery runs the retry itself, with the arguments it resends to a worker.
    run_pk = tasks.bulletin_scheduled_send_task.apply(args=(weekly.pk,), throw=False).get()

    run = BulletinRun.objects.get()
    assert run_pk == run.pk and len(attempts) == 2
    assert run.run_key == "schedule:2026-03-02T08:00"
    assert len(mailbox) == run.sent > 0
