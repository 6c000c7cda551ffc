import time

from django.core.management.base import BaseCommand, CommandError

from bulletins.models import Bulletin, BulletinRun
from bulletins.services.platforms import PlatformNotConfigured
from bulletins.services.runs import (
    BulletinNotReady,
    bulletin_dry_run,
    bulletin_run_in_process,
    bulletin_run_start,
    outstanding,
    retry_waiting,
)
from bulletins.tasks import run_dispatch
from recsite.celery import app as celery_app


class Command(BaseCommand):
    help = (
        "Send a bulletin to its audience now (in this process, or on the Celery workers when "
        "they run), resume a run, or --dry-run: plan and render every email, send nothing."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug", help="the bulletin's slug")
        parser.add_argument("--dry-run", action="store_true", help="count and render only")
        parser.add_argument(
            "--resume", type=int, metavar="RUN", help="resume this run instead of starting one"
        )
        parser.add_argument(
            "--run-key",
            default="",
            help="idempotency key: a second call with the same key resumes the same run",
        )

    def handle(self, *args, slug: str, dry_run: bool, resume: int | None, run_key: str, **options):
        progress = options["verbosity"] > 0
        bulletin = Bulletin.objects.filter(slug=slug).first()
        if bulletin is None:
            known = ", ".join(Bulletin.objects.values_list("slug", flat=True)) or "none"
            raise CommandError(f"no bulletin {slug!r} (known: {known})")
        try:
            if dry_run:
                self._dry_run(bulletin, progress)
                return
            run = self._run(bulletin, resume, run_key)
            started = time.monotonic()
            if celery_app.conf.task_always_eager:
                run = bulletin_run_in_process(run=run, progress=progress)
            else:
                run = self._on_workers(run)
        except (BulletinNotReady, PlatformNotConfigured) as error:
            raise CommandError(str(error)) from None
        self._summary(run, time.monotonic() - started)
        if run.status == BulletinRun.Status.FAILED:
            raise CommandError(f"run #{run.pk} failed: {run.error}")

    def _run(self, bulletin: Bulletin, resume: int | None, run_key: str) -> BulletinRun:
        if resume is None:
            run, created = bulletin_run_start(
                bulletin=bulletin, trigger=BulletinRun.Trigger.COMMAND, run_key=run_key
            )
            if not created:
                self.stdout.write(f"Run #{run.pk} already exists for key {run_key!r}: resuming.")
            return run
        run = BulletinRun.objects.filter(pk=resume, bulletin=bulletin).first()
        if run is None:
            raise CommandError(f"no run #{resume} of bulletin {bulletin.slug!r}")
        return run

    def _on_workers(self, run: BulletinRun) -> BulletinRun:
        run_dispatch(run)
        self.stdout.write(f"Run #{run.pk} dispatched to the workers; waiting for it to finish.")
        while run.status in (BulletinRun.Status.PREPARING, BulletinRun.Status.SENDING):
            time.sleep(2)
            run.refresh_from_db()
            waiting = retry_waiting(run.pk)
            if run.status == BulletinRun.Status.SENDING and waiting == outstanding(run.pk) > 0:
                self.stdout.write(f"{waiting} deliveries wait for a retry on the workers.")
                break
        return run

    def _summary(self, run: BulletinRun, seconds: float) -> None:
        self.stdout.write(
            f"Run #{run.pk} of {run.bulletin.slug}: {run.status}. Audience {run.audience}, "
            f"sent {run.sent}, failed {run.failed}, cancelled {run.cancelled}; skipped "
            f"{run.skipped} (not opted in {run.skipped_not_opted_in}, unsubscribed "
            f"{run.skipped_unsubscribed}, no email {run.skipped_no_email}, no item "
            f"{run.skipped_no_items}); fallback used for {run.fallback}. {seconds:.1f} s."
        )

    def _dry_run(self, bulletin: Bulletin, progress: bool) -> None:
        report = bulletin_dry_run(bulletin=bulletin, progress=progress)
        variants = ", ".join(f"{name}: {n}" for name, n in sorted(report.by_variant.items()))
        self.stdout.write(
            f"Dry run of {bulletin.slug} (nothing written, nothing sent): audience "
            f"{report.audience}, would send {report.recipients} ({variants}); skipped not opted "
            f"in {report.skipped_not_opted_in}, unsubscribed {report.skipped_unsubscribed}, no "
            f"email {report.skipped_no_email}, no item {report.skipped_no_items}; fallback used "
            f"for {report.fallback}; largest email {report.largest_bytes / 1024:.1f} KB."
        )
        for error in report.render_errors:
            self.stderr.write(error)
        if report.render_errors:
            raise CommandError(f"{len(report.render_errors)} email(s) could not be rendered")
