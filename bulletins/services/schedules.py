"""A bulletin's schedule as a django-celery-beat periodic task, kept in step with the
bulletin: created, changed, paused or removed when the bulletin is saved, and deleted with
the bulletin."""

import json

from django.db import transaction
from django_celery_beat.models import PeriodicTask

from bulletins.models import Bulletin

SCHEDULED_SEND_TASK = "bulletins.tasks.bulletin_scheduled_send_task"


def periodic_task_name(bulletin: Bulletin) -> str:
    return f"Bulletin: {bulletin.slug}"


@transaction.atomic
def bulletin_schedule_sync(*, bulletin: Bulletin) -> PeriodicTask | None:
    task = bulletin.periodic_task
    if bulletin.schedule_id is None:
        bulletin_schedule_remove(bulletin=bulletin)
        return None
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
