"""The data: a synthetic publisher imported, a model trained, every user's lists computed into
Redis and a secret API key, set up in a child process so the parent never holds a connection."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.api_load.config import BENCH_DB, ENTRY_POINT, PLACEMENT, REPO, BenchError
from benchmarks.api_load.services import django_env


def setup_child(options: dict) -> None:
    """Runs in the child: migrate, import the synthetic publisher, train, compute every list,
    create the key; prints one JSON line for the parent."""
    import django

    django.setup()
    from django.conf import settings
    from django.core.cache import cache
    from django.core.management import call_command

    from recommendations.models import EndUser, Interaction, Item
    from recommendations.services.api_keys import api_key_create
    from recommendations.services.demo import demo_data_load
    from recommendations.services.recommending import (
        recommendations_cache_key,
        recommendations_compute_all_in_process,
    )
    from recommendations.services.training import model_version_train

    settings.REALTIME_REFRESH = False  # the import's few live events need no refresh here
    seconds = {}
    started = time.monotonic()
    call_command("migrate", verbosity=0)
    seconds["migrate"] = time.monotonic() - started

    started = time.monotonic()
    report = demo_data_load(
        n_users=options["users"],
        n_items=options["items"],
        seed=options["seed"],
        directory=Path(options["folder"]) / "csv",
    )
    seconds["import"] = time.monotonic() - started

    started = time.monotonic()
    version = model_version_train()
    seconds["train"] = time.monotonic() - started
    if not version.is_active:
        raise BenchError(f"the trained model was not activated: {version.decision}")

    started = time.monotonic()
    run = recommendations_compute_all_in_process()
    seconds["compute"] = time.monotonic() - started

    _, secret = api_key_create(name="bench-api", kind="secret")
    # Only users with a stored, non-empty list: the ones the batch wrote into the cache.
    users = list(EndUser.objects.filter(is_anonymous=False).values_list("external_id", flat=True))
    cached = cache.get_many(
        [recommendations_cache_key(placement_slug=PLACEMENT, user_external_id=u) for u in users]
    )
    with_items = [
        u
        for u in users
        if (
            cached.get(recommendations_cache_key(placement_slug=PLACEMENT, user_external_id=u))
            or {}
        ).get("items")
    ]
    items = list(Item.objects.values_list("external_id", flat=True))
    Path(options["folder"], "users.json").write_text(json.dumps(with_items))
    Path(options["folder"], "items.json").write_text(json.dumps(items))
    print(
        json.dumps(
            {
                "secret_key": secret,
                "users": report.users,
                "known_users": len(users),
                "users_with_cached_list": len(with_items),
                "items": report.items,
                "interactions": Interaction.objects.count(),
                "lists_written": run.lists_written,
                "model": version.decision,
                "params": version.params,
                "seconds": seconds,
            }
        )
    )


def setup(database_url: str, folder: Path, args: argparse.Namespace) -> dict:
    options = {"users": args.users, "items": args.items, "seed": args.seed, "folder": str(folder)}
    print(f"setting up {args.users:,} users x {args.items:,} items in {BENCH_DB} ...", flush=True)
    done = subprocess.run(
        [sys.executable, str(ENTRY_POINT), "--setup-child", json.dumps(options)],
        env=django_env(database_url, folder),
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise BenchError(f"setting up the data failed:\n{done.stderr[-4000:]}")
    info = json.loads(done.stdout.strip().splitlines()[-1])
    info["user_ids"] = json.loads((folder / "users.json").read_text())
    info["item_ids"] = json.loads((folder / "items.json").read_text())
    s = info["seconds"]
    print(
        f"  {info['users']:,} users ({info['users_with_cached_list']:,} with a cached list), "
        f"{info['items']:,} items, {info['interactions']:,} events; import {s['import']:.0f} s, "
        f"train {s['train']:.0f} s, compute {s['compute']:.0f} s",
        flush=True,
    )
    return info
