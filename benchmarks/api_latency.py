"""The public APIs under real HTTP load: granian on loopback, an open-loop load generator.

Sets up a scratch PostgreSQL database and a Redis database with a synthetic publisher (users,
items, their events), trains a model, computes every user's lists into the cache and creates a
secret API key; starts the server (granian) on 127.0.0.1 with production settings; then sends
requests at fixed rates from `benchmarks/loadgen/openloop.js` (Node.js, no dependencies) and
writes what it measured into RESULTS.md. The database, the Redis database and the server are
cleaned up however the run ends.

Scenarios:
- `latency` (default): `GET /api/v1/recommendations/` for a random user per request, at each
  rate of `--rates`, one after the other; the curve of p50/p90/p99/max as the rate rises, and
  the verdict at `--target-rate` (p99 at most `--target-p99-ms`).
- `latency-batch`: the `latency` load at `--rates` (default 250 and the target rate) while
  `manage.py recommend --all` recomputes every user's lists beside it (in process, BLAS/OpenMP
  threads limited to 1, at low priority: `nice -n 19` and its session's autogroup at 19; at
  the target rate also at `nice -n 19` alone and not niced), from the end of each step's
  warm-up to its end, started again whenever it finishes; reports where the batch runs lay
  over each measured window, how many lists it wrote, and the verdict at the target rate.
- `events`: `POST /api/v1/events/` in batches of `--batch` new events, at each events/s rate
  of `--rates`; checks that every event answered 200 is stored (count in = count stored).

Add one in `benchmarks/api_load/scenarios.py`: a function that returns a `Scenario` (the plan
for the load generator, the steps and a check to run after them) and its name in `SCENARIOS`;
`Scenario.background` runs a command beside the load (e.g. a batch recomputation). This file
is only the command line; the parts are in `benchmarks/api_load/` (see its `__init__.py`).

    python benchmarks/api_latency.py [--scenario latency|latency-batch|events] [--short]
        [--rates 100,500] [--duration 20] [--warmup 5] [--server gthread:2:4] [--compare sync:3]
        [--users 20000] [--items 4000] [--no-write] [--json FILE]

Needs PostgreSQL (`BENCH_POSTGRES_URL`, default postgres://postgres@127.0.0.1:5432/postgres:
a role that may create databases), Redis (`BENCH_REDIS_URL`, default
redis://127.0.0.1:6379/14: that database is emptied) and Node.js 18+.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.api_load.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
