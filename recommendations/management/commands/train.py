import json

from django.core.management.base import BaseCommand, CommandError

from recommendations.services.training import TrainingError, model_version_train


class Command(BaseCommand):
    help = (
        "Train an in-house model version on the database, measure it on a time-based holdout "
        "and activate it if it is not worse than the active one."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--tune",
            action="store_true",
            help="search hyperparameters on a time-based validation split of the train part",
        )
        parser.add_argument(
            "--params",
            type=json.loads,
            default=None,
            help="engine parameters as JSON, e.g. '{\"ease_l2\": 300}'",
        )
        parser.add_argument("--k", type=int, default=10)

    def handle(self, *args, tune: bool, params: dict | None, k: int, **options) -> None:
        try:
            version = model_version_train(params=params, tune=tune, k=k)
        except (TrainingError, ValueError) as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"Model version #{version.pk}: {version.get_status_display()}")
        self.stdout.write(f"  {version.decision}")
        self.stdout.write(f"  data: {version.data_size}")
        self.stdout.write(f"  {'metric':<16}{'model':>10}{'popularity':>12}")
        for name, value in version.metrics.items():
            if isinstance(value, float):
                baseline = version.baseline_metrics.get(name, float("nan"))
                self.stdout.write(f"  {name:<16}{value:>10.4f}{baseline:>12.4f}")
        self.stdout.write(f"  trained in {version.duration_seconds:.1f} s")
