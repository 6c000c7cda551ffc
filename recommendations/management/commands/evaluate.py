import json

from django.core.management.base import BaseCommand, CommandError

from recommendations import selectors
from recommendations.engine.datasets import read_personalize_csvs
from recommendations.engine.errors import EngineError
from recommendations.engine.evaluation import compare_with_popularity

SHOWN = [
    ("precision_at_k", "Precision@{k}"),
    ("recall_at_k", "Recall@{k}"),
    ("ndcg_at_k", "nDCG@{k}"),
    ("map", "MAP"),
    ("coverage", "coverage"),
    ("novelty", "novelty"),
    ("fit_seconds", "fit s"),
    ("recommend_seconds", "recommend s"),
]


class Command(BaseCommand):
    help = (
        "Evaluate the hybrid beside popularity offline, on Personalize-style CSVs (--data DIR) "
        "or on the database."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--data", help="a folder with interactions.csv [items.csv users.csv]")
        parser.add_argument("--split", choices=["stratified", "temporal"], default="stratified")
        parser.add_argument("--test-size", type=float, default=0.25)
        parser.add_argument("--k", type=int, default=10)
        parser.add_argument("--seeds", type=int, nargs="+", default=[42])
        parser.add_argument(
            "--tune",
            action="store_true",
            help="search parameters on a validation split of each train part and report them",
        )
        parser.add_argument("--params", type=json.loads, default=None, help="engine params JSON")
        parser.add_argument("--json", action="store_true", help="print the full result as JSON")

    def handle(self, *args, **options) -> None:
        try:
            if options["data"]:
                interactions, items, users = read_personalize_csvs(options["data"])
            else:
                interactions = selectors.interactions_frame()
                items, users = selectors.items_frame(), selectors.user_attributes_frame()
            result = compare_with_popularity(
                interactions,
                items=items,
                users=users,
                split=options["split"],
                test_size=options["test_size"],
                k=options["k"],
                seeds=options["seeds"],
                params=_with_event_weighting(options["params"], options["data"]),
                tune=options["tune"],
            )
        except (EngineError, OSError) as error:
            raise CommandError(str(error)) from None
        if options["json"]:
            self.stdout.write(json.dumps(result, indent=2, default=str))
            return
        self._table(result)

    def _table(self, result: dict) -> None:
        k = result["k"]
        self.stdout.write(
            f"{result['split']} split, {result['test_size']:.0%} test, top-{k}, "
            f"mean over seeds {', '.join(map(str, result['seeds']))}"
        )
        self.stdout.write(f"{'':<14}" + "".join(f"{label.format(k=k):>14}" for _, label in SHOWN))
        for model in ("hybrid", "popularity"):
            values = result["summary"][model]
            self.stdout.write(
                f"{model:<14}" + "".join(f"{values[name]:>14.4f}" for name, _ in SHOWN)
            )
        for run in result["runs"]:
            tuned = {
                n: v for n, v in run["params"].items() if n not in ("event_weights", "value_events")
            }
            self.stdout.write(f"seed {run['seed']}: parameters {tuned}")


def _with_event_weighting(params: dict | None, data_dir: str | None) -> dict:
    """On the database, the event types' weights from admin shape the model, as in training."""
    return {**({} if data_dir else selectors.event_weighting()), **(params or {})}
