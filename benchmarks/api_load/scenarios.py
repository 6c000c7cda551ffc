"""The scenarios: each turns the set-up data into a `Scenario` (the plan for the load
generator, its steps, a check to run after them, a command to run beside them).

Add one: a function that returns a `Scenario` and its name in `SCENARIOS`."""

from __future__ import annotations

import argparse
import json
import random
import sys
import time

from benchmarks.api_load.config import (
    BENCH_DB,
    EVENT_RATES,
    EVENTS_PATH,
    LATENCY_RATES,
    PLACEMENT,
    PROXY_HEADERS,
    RECOMMENDATIONS_PATH,
    BenchError,
)
from benchmarks.api_load.load import Scenario, Step
from benchmarks.api_load.priority import AUTOGROUP_19, NICE, low_priority
from benchmarks.api_load.services import database_url_for, sql_count


def scenario_latency(info: dict, secret: str, args: argparse.Namespace) -> Scenario:
    """GET one random user's list per request, over every user with a cached list."""
    rng = random.Random(args.seed)
    users = info["user_ids"]
    if not users:
        raise BenchError("no user has a cached list: the batch wrote nothing")
    rates = args.rates or LATENCY_RATES

    def path(user: str) -> str:
        return f"{RECOMMENDATIONS_PATH}?placement={PLACEMENT}&user={user}&k={args.k}"

    needed = int(max(rates) * (args.duration + args.warmup)) + 1
    plan = {
        "headers": {"Authorization": f"Bearer {secret}", **PROXY_HEADERS},
        # every user once (the prime pass), then random users with replacement
        "requests": [{"method": "GET", "path": path(u)} for u in rng.sample(users, len(users))]
        + [{"method": "GET", "path": path(rng.choice(users))} for _ in range(needed)],
        "cycle": True,
        "body_must_contain": '"items"',
    }
    steps = []
    if args.prime:
        # Every user once, so whatever the endpoint keeps per user after a first request is
        # there before the measured steps; reported as its own row.
        prime_rate = args.target_rate
        steps.append(
            Step("every user once", prime_rate, len(users) / prime_rate, 0.0, 0, curve=False)
        )
    offset = len(users)
    for rate in rates:
        steps.append(Step(f"{rate:g}/s", rate, args.duration, args.warmup, offset))
        offset = len(users) + (offset - len(users) + int(rate * 7919)) % needed
    if args.poisson:
        steps.append(
            Step(
                f"{args.target_rate:g}/s Poisson",
                args.target_rate,
                args.duration,
                args.warmup,
                len(users),
                arrivals="poisson",
                curve=False,
            )
        )
    return Scenario("latency", plan, steps)


def scenario_events(info: dict, secret: str, args: argparse.Namespace) -> Scenario:
    """POST batches of new events (unique ids) for known users and items; afterwards every
    event of a 200 answer must be in the database."""
    rng = random.Random(args.seed)
    users, items = info["user_ids"], info["item_ids"]
    rates = args.rates or EVENT_RATES
    batch = args.batch
    now = int(time.time())
    requests, n = [], 0
    steps = []
    for rate in rates:
        per_s = rate / batch
        count = int(per_s * (args.duration + args.warmup)) + 1
        steps.append(
            Step(
                f"{rate:g} events/s",
                per_s,
                args.duration,
                args.warmup,
                len(requests),
                per_request=batch,
            )
        )
        for _ in range(count):
            events = []
            for _ in range(batch):
                events.append(
                    {
                        "event_id": f"bench-{n}",
                        "user_id": rng.choice(users),
                        "item_id": rng.choice(items),
                        "event_type": rng.choice(("view", "view", "click")),
                        "timestamp": now - rng.randrange(3600),
                    }
                )
                n += 1
            requests.append({"method": "POST", "path": EVENTS_PATH, "body": json.dumps(events)})
    plan = {
        "headers": {
            "Authorization": f"Bearer {secret}",
            "Content-Type": "application/json",
            **PROXY_HEADERS,
        },
        "requests": requests,
        "cycle": False,
    }
    database_url = database_url_for(BENCH_DB)
    before = info["interactions"]

    def check(results: list[dict]) -> dict:
        # Every request of every step was sent exactly once; those answered 200 were stored
        # whole (the API stores a batch in one go), the others may or may not have been.
        accepted = sum(r["per_request"] * r["ok_all"] for r in results)
        sent = sum(r["per_request"] * r["sent_all"] for r in results)
        stored = sql_count(
            database_url,
            "SELECT count(*) FROM recommendations_interaction WHERE event_id LIKE 'bench-%'",
        )
        total = sql_count(database_url, "SELECT count(*) FROM recommendations_interaction")
        return {
            "events_sent": sent,
            "events_answered_200": accepted,
            "events_stored": stored,
            "interactions_before": before,
            "interactions_after": total,
            "lost": max(0, accepted - stored),
        }

    probe_event = {**json.loads(requests[0]["body"])[0], "event_id": "probe-0"}
    probe = {"method": "POST", "path": EVENTS_PATH, "body": json.dumps([probe_event])}
    return Scenario("events", plan, steps, check=check, probe=probe)


BATCH_THREADS = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

# The batch rests after each chunk of lists it writes as long as the write took (README,
# Scaling out): the work it gives PostgreSQL and Redis, which its nice value does not reach, is
# spread over twice the time.
BATCH_PACING = {"RECOMMEND_WRITE_PAUSE_RATIO": "1"}


def scenario_latency_batch(info: dict, secret: str, args: argparse.Namespace) -> Scenario:
    """The latency load while `manage.py recommend --all` recomputes every user's lists (in
    process, eager) beside it, from the end of each step's warm-up to its end: at low CPU
    priority (`low_priority`) at each rate, then at the target rate with its autogroup at nice
    19, at `nice -n 19` alone and not niced; BLAS/OpenMP threads limited to 1 in all. A row
    without the batch first and last, for reference and to show how the machine drifted."""
    base = scenario_latency(info, secret, args)
    rates = args.rates or [250, args.target_rate]
    cgroup = args.batch_cgroup
    users = len(info["user_ids"])
    steps = [s for s in base.steps if s.label == "every user once"]

    def step(label: str, rate: float, prefix: list[str] | None, n: int) -> Step:
        start = users + int(rate * 7919 * (n + 1)) % max(1, len(base.plan["requests"]) - users)
        return Step(label, rate, args.duration, args.warmup, start, background_prefix=prefix)

    steps.append(step(f"{args.target_rate:g}/s, no batch", args.target_rate, None, 0))
    for n, rate in enumerate(rates, start=1):
        steps.append(step(f"{rate:g}/s, batch at low priority", rate, low_priority(cgroup), n))
    target = args.target_rate
    if cgroup is not None:
        steps.append(step(f"{target:g}/s, batch at nice 19, autogroup 19", target, AUTOGROUP_19, 7))
    steps.append(step(f"{args.target_rate:g}/s, batch at nice 19 only", args.target_rate, NICE, 9))
    steps.append(step(f"{args.target_rate:g}/s, batch not niced", args.target_rate, [], 11))
    steps.append(step(f"{args.target_rate:g}/s, no batch, again", args.target_rate, None, 13))
    return Scenario(
        "latency-batch",
        base.plan,
        steps,
        background=[sys.executable, "manage.py", "recommend", "--all", "--verbosity", "0"],
        background_env={**BATCH_THREADS, **BATCH_PACING},
        stop_when_saturated=False,
    )


SCENARIOS = {
    "latency": scenario_latency,
    "latency-batch": scenario_latency_batch,
    "events": scenario_events,
}
