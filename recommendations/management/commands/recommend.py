import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from recommendations.models import EndUser, Placement, RecommendationRun
from recommendations.selectors import recommendations_explained
from recommendations.services.recommending import (
    NoActiveModel,
    recommendations_compute_all_in_process,
    recommendations_refresh_user,
)
from recommendations.tasks import recommendations_compute_all_task
from recsite.celery import app as celery_app


class Command(BaseCommand):
    help = "Compute every user's lists with the active model (--all), or one user's (--user)."

    def add_arguments(self, parser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--all", action="store_true", help="every user, in shards")
        target.add_argument("--user", help="one user's external id: compute and print")
        parser.add_argument("--shard-users", type=int, default=None)

    def handle(self, *args, all: bool, user: str | None, shard_users: int | None, **options):
        try:
            if user:
                self._one(user)
            elif celery_app.conf.task_always_eager:
                self._all_in_process(shard_users, progress=options["verbosity"] > 0)
            else:
                self._all_on_workers(shard_users, progress=options["verbosity"] > 0)
        except NoActiveModel as error:
            raise CommandError(str(error)) from None

    def _all_in_process(self, shard_users: int | None, progress: bool) -> None:
        started = time.monotonic()
        run = recommendations_compute_all_in_process(shard_users=shard_users, progress=progress)
        self._summary(run, time.monotonic() - started)

    def _all_on_workers(self, shard_users: int | None, progress: bool) -> None:
        started = time.monotonic()
        run_id = recommendations_compute_all_task.delay(shard_users=shard_users).get(timeout=600)
        run = RecommendationRun.objects.get(pk=run_id)
        with tqdm(
            total=run.shards, desc="shards (workers)", unit="shard", disable=not progress
        ) as bar:
            while run.status == RecommendationRun.Status.RUNNING:
                time.sleep(1)
                run.refresh_from_db()
                bar.update(run.shards_done - bar.n)
        self._summary(run, time.monotonic() - started)

    def _summary(self, run: RecommendationRun, seconds: float) -> None:
        self.stdout.write(
            f"Run #{run.pk} with model version #{run.model_version_id}: {run.users} users, "
            f"{run.lists_written} lists over {run.shards} shards in {seconds:.1f} s "
            f"({settings.RECOMMEND_SHARD_USERS} users per shard by default)."
        )

    def _one(self, external_id: str) -> None:
        user = EndUser.objects.filter(external_id=external_id).first()
        if user is None:
            raise CommandError(f"no end user with external id {external_id!r}")
        recommendations_refresh_user(user_pk=user.pk)
        for placement in Placement.objects.filter(is_active=True):
            self.stdout.write(f"{placement.slug}:")
            for entry in recommendations_explained(user_pk=user.pk, placement_slug=placement.slug):
                self.stdout.write(f"  {entry['rank']:>2}. {entry['title']}  ({entry['why']})")
