import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from integrations.personalize.errors import PersonalizeError
from recommendations.models import PersonalizeRun
from recommendations.services.personalize import (
    PersonalizeNotConfigured,
    personalize_run_advance,
    personalize_run_fail,
    personalize_run_start,
)
from recommendations.tasks import personalize_run_task
from recsite.celery import app as celery_app


class Command(BaseCommand):
    help = (
        "Run the Amazon Personalize path: export, import, train, batch inference, store lists. "
        "With workers it is handed to Celery; without, this command follows it to the end."
    )

    def handle(self, *args, **options) -> None:
        try:
            run = personalize_run_start()
        except PersonalizeNotConfigured as error:
            raise CommandError(str(error)) from None
        if not celery_app.conf.task_always_eager:
            personalize_run_task.delay_on_commit(run.pk)
            self.stdout.write(f"{run} handed to the workers; follow it in admin.")
            return
        failures = 0
        while True:
            try:
                wait = personalize_run_advance(run_id=run.pk)
                failures = 0
            except PersonalizeError as error:  # retryable: wait and try the step again
                failures += 1
                if failures > personalize_run_task.max_retries:  # as bounded as on workers
                    reason = f"gave up after {failures} attempts: {error}"
                    personalize_run_fail(run_id=run.pk, reason=reason)
                    wait = None
                else:
                    seconds = settings.PERSONALIZE_POLL_SECONDS
                    self.stderr.write(f"{error}; retrying in {seconds} s")
                    wait = seconds
            run.refresh_from_db()
            self.stdout.write(f"{run}: {run.message}")
            if wait is None:
                break
            time.sleep(wait)  # a command, not a worker: nobody else is waiting on this process
        if run.status == PersonalizeRun.Status.FAILED:
            raise CommandError(run.message)
