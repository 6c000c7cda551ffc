"""A bulletin's schedule as a django-celery-beat periodic task, kept in step with the
bulletin: created, changed, paused or removed when the bulletin is saved, and deleted with
the bulletin."""

import json
import zoneinfo

from django.db import transaction
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from bulletins.models import Bulletin
from bulletins.scheduling import crontab_fields

SCHEDULED_SEND_TASK = "bulletins.tasks.bulletin_scheduled_send_task"


def _crontab(fields: dict[str, str]) -> CrontabSchedule:
    """The crontab with these fields, shared by bulletins that send at the same times."""
    fields = {**fields, "timezone": zoneinfo.ZoneInfo(fields["timezone"])}
    found = CrontabSchedule.objects.filter(**fields).order_by("pk").first()
    return found or CrontabSchedule.objects.create(**fields)


def periodic_task_name(bulletin: Bulletin) -> str:
    return f"Bulletin: {bulletin.slug}"


@transaction.atomic
def bulletin_schedule_sync(*, bulletin: Bulletin) -> PeriodicTask | None:
    """Make the bulletin's crontab and periodic task match its own schedule fields."""
    fields = crontab_fields(bulletin.schedule_spec)
    if fields is None:
        bulletin_schedule_remove(bulletin=bulletin)
        if bulletin.schedule_id is not None:
            Bulletin.objects.filter(pk=bulletin.pk).update(schedule=None)
            bulletin.schedule = None
        return None
    crontab = _crontab(fields)
    if bulletin.schedule_id != crontab.pk:
        Bulletin.objects.filter(pk=bulletin.pk).update(schedule=crontab)
        bulletin.schedule = crontab
    task = bulletin.periodic_task
    # A task of this name left behind by a deleted bulletin of the same slug is taken over:
    # names are unique, and the leftover would otherwise block the save.
    name = periodic_task_name(bulletin)
    task = task or PeriodicTask.objects.filter(name=name, bulletin__isnull=True).first()
    task = task or PeriodicTask()
    task.name = name
    task.task = SCHEDULED_SEND_TASK
    task.crontab_id = bulletin.schedule_id
    task.interval = task.solar = task.clocked = None
    task.args = json.dumps([bulletin.pk])
    task.kwargs = "{}"
    task.enabled = bulletin.schedule_enabled
    task.description = f"Sends the bulletin {bulletin.name!r} (edit the schedule on the bulletin)."
    task.full_clean()
    task.save()
    if bulletin.periodic_task_id != task.pk:
        Bulletin.objects.filter(pk=bulletin.pk).update(periodic_task=task)
        bulletin.periodic_task = task
    return task


@transaction.atomic
def bulletin_schedule_remove(*, bulletin: Bulletin) -> None:
    """Delete the bulletin's periodic task (before the bulletin itself is deleted)."""
    task = bulletin.periodic_task
    if task is None:
        return
    Bulletin.objects.filter(pk=bulletin.pk).update(periodic_task=None)
    bulletin.periodic_task = None
    task.delete()


def periodic_task_delete_with_bulletin(sender, instance: Bulletin, **kwargs) -> None:
    """post_delete receiver: the task would otherwise keep firing for a bulletin that is gone."""
    if instance.periodic_task_id is not None:
        PeriodicTask.objects.filter(pk=instance.periodic_task_id).delete()
