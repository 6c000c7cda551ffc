"""One user's refresh after an event, end to end through the service (target: 50 ms).

`recommendations_refresh_user` as the refresh task runs it: read the user's latest events from
the database, score them with the active model (no refit), write the lists to the database and
the cache. Runs on a scratch SQLite database (or DATABASE_URL's server, in a scratch database
when it is PostgreSQL) loaded with the demo's synthetic publisher.

    python benchmarks/refresh_service.py [--users 2000] [--items 600] [--calls 300] [--no-write]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--items", type=int, default=600)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--no-write", dest="write", action="store_false")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        os.environ["DATABASE_URL"] = f"sqlite:///{folder}/refresh.sqlite3"
        os.environ["ARTIFACT_ROOT"] = f"{folder}/artifacts"
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings")
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command

        from benchmarks.results import section_write, stamp
        from recommendations.models import EndUser
        from recommendations.services.demo import demo_data_load
        from recommendations.services.events import events_ingest
        from recommendations.services.recommending import recommendations_refresh_user
        from recommendations.services.training import model_version_train

        settings.REALTIME_REFRESH = False  # the benchmark calls the refresh itself
        call_command("migrate", verbosity=0)
        data = demo_data_load(
            n_users=args.users, n_items=args.items, seed=7, directory=Path(folder) / "csv"
        ).data
        model_version_train()
        rng = np.random.default_rng(0)
        user_pks = dict(EndUser.objects.values_list("external_id", "pk"))
        users = rng.choice(data.users["USER_ID"].to_numpy(), size=args.calls)
        items = rng.choice(data.items["ITEM_ID"].to_numpy(), size=args.calls)
        recommendations_refresh_user(user_pk=user_pks[users[0]])  # loads the model once
        seconds = []
        for n, (user_id, item_id) in enumerate(zip(users, items, strict=True)):
            events_ingest(
                events=[
                    {
                        "user_id": user_id,
                        "item_id": item_id,
                        "event_type": "click",
                        "event_id": f"bench-{n}",
                    }
                ]
            )
            started = time.perf_counter()
            recommendations_refresh_user(user_pk=user_pks[user_id])
            seconds.append(time.perf_counter() - started)
        ms = np.array(seconds) * 1000

    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    body = "\n".join(
        [
            "## Refreshing one user after an event, through the service",
            "",
            stamp("python benchmarks/refresh_service.py"),
            "",
            f"`recommendations_refresh_user` after one new event, {args.calls} calls on the "
            f"demo's synthetic publisher ({args.users} users, {args.items} items, SQLite): read "
            "the user's "
            "latest events, score them with the active model without refitting, write every "
            "placement's list to the database and the cache. Target: 50 ms.",
            "",
            "| p50 ms | p95 ms | p99 ms | max ms |",
            "| --- | --- | --- | --- |",
            f"| {p50:.1f} | {p95:.1f} | {p99:.1f} | {ms.max():.1f} |",
        ]
    )
    print(body)
    if args.write:
        section_write("refresh-service", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
