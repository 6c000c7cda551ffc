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

Add one: a function that returns a `Scenario` (the plan for the load generator, the steps and
a check to run after them) and its name in `SCENARIOS`; `Scenario.background` runs a command
beside the load (e.g. a batch recomputation).

    python benchmarks/api_latency.py [--scenario latency|latency-batch|events] [--short]
        [--rates 100,500] [--duration 20] [--warmup 5] [--server gthread:2:4] [--compare sync:3]
        [--users 20000] [--items 4000] [--no-write] [--json FILE]

Needs PostgreSQL (`BENCH_POSTGRES_URL`, default postgres://postgres@127.0.0.1:5432/postgres:
a role that may create databases), Redis (`BENCH_REDIS_URL`, default
redis://127.0.0.1:6379/14: that database is emptied) and Node.js 18+.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.results import machine, section_write  # noqa: E402

LOADGEN = REPO / "benchmarks" / "loadgen" / "openloop.js"
BENCH_DB = "recsite_bench_api"
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
PLACEMENT = "for-you"
RECOMMENDATIONS_PATH = "/api/v1/recommendations/"
EVENTS_PATH = "/api/v1/events/"
LATENCY_RATES = [100, 250, 500, 750, 1000, 1500, 2000]
EVENT_RATES = [1000, 2500, 5000, 7500, 10000]


class BenchError(Exception):
    """The benchmark cannot run or went wrong; the message says why."""


# --- the services -----------------------------------------------------------------------------


def preflight() -> None:
    """Fail at once, with what is missing, when a service or Node.js is not there."""
    import psycopg
    import redis

    problems = []
    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
    except psycopg.Error as error:
        problems.append(
            f"PostgreSQL is not reachable at {POSTGRES_URL} ({str(error).strip().splitlines()[0]})."
            " Start it (e.g. `pg_ctlcluster 15 main start`) or set BENCH_POSTGRES_URL."
        )
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as error:
        problems.append(
            f"Redis is not reachable at {REDIS_URL} ({error}). Start it (e.g. `redis-server "
            "--daemonize yes`) or set BENCH_REDIS_URL."
        )
    node = shutil.which("node")
    if node is None:
        problems.append("Node.js is not installed; the load generator needs it (node 18+).")
    else:
        version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout
        if int(version.strip().lstrip("v").split(".")[0]) < 18:
            problems.append(f"Node.js {version.strip()} is too old; the load generator needs 18+.")
    if problems:
        raise BenchError("cannot run:\n" + "\n".join(f"- {p}" for p in problems))


def _database_url(name: str) -> str:
    parts = urlsplit(POSTGRES_URL)
    return urlunsplit(parts._replace(path=f"/{name}"))


def database_create(stack: contextlib.ExitStack) -> str:
    """A fresh scratch database, dropped when the stack closes (even after a failure)."""
    import psycopg

    def drop() -> None:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')

    drop()
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
    stack.callback(drop)
    return _database_url(BENCH_DB)


def redis_flush(stack: contextlib.ExitStack) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    stack.callback(lambda: redis.Redis.from_url(REDIS_URL).flushdb())


def cached_lists() -> int:
    """How many of the batch's lists are in Redis (another process may empty the database)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    return sum(1 for _ in client.scan_iter(match=f"*recs:v1:{PLACEMENT}:*", count=5000))


def sql_count(database_url: str, query: str) -> int:
    import psycopg

    with psycopg.connect(database_url) as conn:
        return conn.execute(query).fetchone()[0]


def database_settle(database_url: str) -> None:
    """Vacuum, analyse and checkpoint after the import, so autovacuum and the checkpointer do
    not work through the freshly written tables during the first measured steps."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
        conn.execute("CHECKPOINT")


# --- setting up the data (in a child process, so this one never holds a connection) ----------


def django_env(database_url: str, folder: Path) -> dict[str, str]:
    """The environment both the setup and the server run with: the scratch database and Redis
    database, artifacts in the scratch folder, this run's own Celery queue."""
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE",)}
    env.update(
        DJANGO_SETTINGS_MODULE="recsite.settings",
        DATABASE_URL=database_url,
        REDIS_URL=REDIS_URL,
        ARTIFACT_ROOT=str(folder / "artifacts"),
        CELERY_TASK_DEFAULT_QUEUE="bench-api",
        LOG_LEVEL="WARNING",
    )
    return env


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
        [sys.executable, __file__, "--setup-child", json.dumps(options)],
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


# --- the WSGI server -----------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerModel:
    """The server and its workers: `granian:2:1` (granian, 2 worker processes with 1 Python
    thread each), or a gunicorn worker class: `sync:3`, `gthread:2:4`."""

    worker_class: str  # "granian", or gunicorn's worker class
    workers: int
    threads: int

    @classmethod
    def parse(cls, text: str) -> WorkerModel:
        name, workers, *threads = text.split(":")
        return cls(name, int(workers), int(threads[0]) if threads else 1)

    @property
    def server(self) -> str:
        return "granian" if self.worker_class == "granian" else "gunicorn"

    def __str__(self) -> str:
        threads = f" × {self.threads} threads" if self.threads > 1 else ""
        if self.server == "granian":
            return f"granian, {self.workers} workers{threads or ' × 1 thread'}"
        return f"gunicorn, {self.workers} `{self.worker_class}` workers{threads}"

    def command(self, port: int, log: Path) -> list[str]:
        bin_dir = Path(sys.executable).parent
        if self.server == "granian":
            return [
                str(bin_dir / "granian"),
                "--interface",
                "wsgi",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(self.workers),
                "--blocking-threads",
                str(self.threads),
                "--backlog",
                "2048",
                "--no-ws",
                "--log-level",
                "warning",
                "recsite.wsgi:application",
            ]
        return [
            str(bin_dir / "gunicorn"),
            "recsite.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(self.workers),
            "--worker-class",
            self.worker_class,
            "--threads",
            str(self.threads),
            "--backlog",
            "2048",
            "--log-level",
            "warning",
            "--error-logfile",
            str(log),
        ]


@dataclass
class Server:
    process: subprocess.Popen
    port: int
    log: Path
    command: list[str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        """The master and its workers."""
        pids = [self.process.pid]
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
            pids += [int(pid) for pid in children.read_text().split()]
        except OSError:
            pass
        return pids

    def cpu_seconds(self) -> float:
        return sum(process_cpu_seconds(pid) for pid in self.pids())


def process_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds over all cores since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(values) - idle) / tick, sum(values) / tick


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_start(
    stack: contextlib.ExitStack, database_url: str, folder: Path, model: WorkerModel
) -> Server:
    port = free_port()
    env = django_env(database_url, folder)
    # Production settings, as behind the TLS proxy the README asks for: DEBUG off, the
    # production middleware and headers; the proxy's X-Forwarded-Proto is sent by the client.
    env.update(
        RECSITE_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        BEHIND_TLS_PROXY="true",
    )
    env.pop("DEBUG", None)
    log = folder / f"{model.server}-{port}.log"
    command = model.command(port, log)
    with log.open("ab") as output:  # granian logs to its standard error
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(process=process, port=port, log=log, command=command)
    stack.callback(server_stop, server)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"{model.server} exited with {process.returncode}:\n{log_tail(log)}")
        try:
            http_get(server, "/api/v1/events/", {})
            return server
        except urllib.error.HTTPError:
            return server  # it answers (405 or 401 is fine here)
        except OSError:
            time.sleep(0.25)
    raise BenchError(f"{model.server} did not answer within 60 s:\n{log_tail(log)}")


def background_stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def server_stop(server: Server) -> None:
    if server.process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(timeout=10)


def log_tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text().splitlines()[-lines:])
    except OSError:
        return "(no log)"


PROXY_HEADERS = {"X-Forwarded-Proto": "https"}


def http_get(server: Server, path: str, headers: dict) -> tuple[int, bytes]:
    request = urllib.request.Request(server.url + path, headers={**PROXY_HEADERS, **headers})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read()


# --- the load -------------------------------------------------------------------------------


@dataclass
class Step:
    label: str
    rate: float  # requests per second
    duration: float
    warmup: float
    start: int  # where in the plan's requests this step begins
    arrivals: str = "uniform"
    per_request: int = 1  # events per request (events scenario)
    curve: bool = True  # a step of the rising curve (which stops once saturated)
    # Run the scenario's background command beside this step, from the end of its warm-up to
    # its end (again and again if it finishes sooner), behind this prefix (e.g. `nice -n 19`;
    # [] for none). None: no background command in this step.
    background_prefix: list[str] | None = None


@dataclass
class Scenario:
    name: str
    plan: dict
    steps: list[Step]
    check: Callable[[list[dict]], dict] = lambda results: {}
    probe: dict | None = None  # the request tried by hand first (default: the plan's first)
    # A command run beside the load (issue 9): once, beside every step, when no step has a
    # `background_prefix`; otherwise beside each step that has one, after its warm-up.
    background: list[str] | None = None
    background_env: dict[str, str] | None = None  # added to its environment
    stop_when_saturated: bool = True


@dataclass
class BackgroundRun:
    started: float  # seconds from the start of the step
    ended: float | None = None
    returncode: int | None = None
    killed: bool = False
    summary: str = ""


class BackgroundLoop:
    """Runs a command again and again from `delay` seconds after `origin` until stopped; keeps
    when each run started and ended (seconds from `origin`) and how it ended."""

    def __init__(self, command: list[str], env: dict[str, str], origin: float, delay: float):
        import threading

        self.command, self.env, self.origin, self.delay = command, env, origin, delay
        self.runs: list[BackgroundRun] = []
        self.stopping = threading.Event()
        self.process: subprocess.Popen | None = None
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _now(self) -> float:
        return time.monotonic() - self.origin

    def _loop(self) -> None:
        if self.stopping.wait(max(0.0, self.delay - self._now())):
            return
        while not self.stopping.is_set():
            run = BackgroundRun(started=self._now())
            self.runs.append(run)
            self.process = subprocess.Popen(
                self.command,
                cwd=REPO,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
            output, _ = self.process.communicate()
            run.ended, run.returncode = self._now(), self.process.returncode
            run.killed = self.stopping.is_set()
            lines = [line for line in (output or "").splitlines() if line.strip()]
            run.summary = lines[-1] if lines else ""
            if run.returncode != 0 and not run.killed:
                print(f"  background command failed ({run.returncode}): {output[-2000:]}")
                return

    def stop(self) -> list[BackgroundRun]:
        self.stopping.set()
        if self.process is not None:
            background_stop(self.process)
        self.thread.join(timeout=60)
        return self.runs


def step_run(
    server: Server, plan_file: Path, step: Step, background: tuple[list[str], dict] | None = None
) -> dict:
    """One step of load; `background` (command, environment) runs beside it after warm-up."""
    load_before = os.getloadavg()
    cpu_before, (busy_before, total_before) = server.cpu_seconds(), machine_busy_seconds()
    started = time.monotonic()
    loop = None
    if background is not None and step.background_prefix is not None:
        command, env = background
        loop = BackgroundLoop([*step.background_prefix, *command], env, started, step.warmup)
    try:
        done = subprocess.run(
            [
                "node",
                str(LOADGEN),
                str(plan_file),
                "--rate",
                str(step.rate),
                "--duration",
                str(step.duration),
                "--warmup",
                str(step.warmup),
                "--arrivals",
                step.arrivals,
                "--start",
                str(step.start),
                "--url",
                server.url,
            ],
            capture_output=True,
            text=True,
            timeout=step.duration + step.warmup + 120,
        )
        elapsed = time.monotonic() - started
    finally:
        runs = loop.stop() if loop is not None else None
    if done.returncode != 0:
        raise BenchError(f"the load generator failed: {done.stderr.strip()}")
    result = json.loads(done.stdout)
    busy_after, total_after = machine_busy_seconds()
    result.update(
        label=step.label,
        per_request=step.per_request,
        load_before=load_before,
        load_after=os.getloadavg(),
        # CPU over the whole step (warm-up included), in cores
        server_cpu_s=server.cpu_seconds() - cpu_before,
        server_cores=(server.cpu_seconds() - cpu_before) / elapsed,
        machine_cores=(busy_after - busy_before)
        / (total_after - total_before)
        * (os.cpu_count() or 1),
        generator_cores=result["generator_cpu_share"],
    )
    if runs is not None:
        result["background"] = {
            "command": shlex.join([*step.background_prefix, *background[0]]),
            # the measured window, conservatively: from the end of the warm-up (counted from
            # launching the generator, which starts its clock a little later) to its exit
            "window": [step.warmup, elapsed],
            "runs": [vars(r) for r in runs],
        }
    return result


def saturated(result: dict) -> bool:
    """Far past what the server keeps up with: more rate only grows the queue."""
    p99 = result["latency_from_due_ms"]["p99"] or 0
    return result["ok"] < 0.9 * result["sent"] or p99 > 1000


def step_line(result: dict) -> str:
    due, send = result["latency_from_due_ms"], result["latency_from_send_ms"]
    errors = result["sent"] - result["ok"]
    return (
        f"  {result['label']:>18}: {result['achieved_per_s']:8.1f}/s  p50 {fmt(due['p50'])}  "
        f"p90 {fmt(due['p90'])}  p99 {fmt(due['p99'])}  max {fmt(due['max'])} ms  "
        f"(from send p99 {fmt(send['p99'])})  not 2xx {errors}  "
        f"server {result['server_cores']:.2f} / generator {result['generator_cores']:.2f} / "
        f"machine {result['machine_cores']:.2f} cores, load {result['load_before'][0]:.2f}"
        + (f"\n    errors: {result['errors']}, statuses: {result['statuses']}" if errors else "")
    )


def fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


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
    database_url = _database_url(BENCH_DB)
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
NICE = ["nice", "-n", "19"]
# Linux groups a session's processes (an "autogroup", on by default) and shares the CPU between
# groups before it looks at any process's nice value: a niced batch in a session of its own
# (here, as under setsid, ssh or a terminal of its own) still takes a whole group's share, as
# much as the server's. Lowering the autogroup too (nice 19) shrinks its share, but it still
# keeps each time slice it starts, and the server's threads, which wake for every request, wait
# behind it. A cgroup with `cpu.idle` (systemd's `CPUWeight=idle`) is preempted at once.
AUTOGROUP_19 = [
    "sh",
    "-c",
    '[ -w /proc/self/autogroup ] && echo 19 > /proc/self/autogroup; exec nice -n 19 "$@"',
    "sh",
]
CGROUP_ROOTS = [Path("/sys/fs/cgroup/cpu"), Path("/sys/fs/cgroup")]  # cgroup v1, then v2


def idle_cgroup_create(stack: contextlib.ExitStack) -> Path | None:
    """A CPU cgroup with `cpu.idle` set for the batch (removed when the stack closes), or None
    where none can be made (no permission, a kernel before 5.15, the cpu controller off)."""
    for root in CGROUP_ROOTS:
        if not (root / "cgroup.procs").exists():
            continue
        if root.name != "cpu" and "cpu" not in (root / "cgroup.subtree_control").read_text():
            continue  # cgroup v2 without the cpu controller for its children
        group = root / f"recsite-bench-batch-{os.getpid()}"
        try:
            group.mkdir(exist_ok=True)
            stack.callback(_cgroup_remove, group)
            (group / "cpu.idle").write_text("1")
            return group
        except OSError:
            continue
    return None


def _cgroup_remove(group: Path) -> None:
    with contextlib.suppress(OSError):  # still busy: the kernel keeps it until it is empty
        group.rmdir()


def low_priority(cgroup: Path | None) -> list[str]:
    """The command prefix that runs the batch at the lowest CPU priority available."""
    if cgroup is None:
        return AUTOGROUP_19
    procs = shlex.quote(str(cgroup / "cgroup.procs"))
    return ["sh", "-c", f'echo $$ > {procs} && exec nice -n 19 "$@"', "sh"]


# The batch rests after each chunk of lists it writes as long as the write took (README,
# Scaling out): the work it gives PostgreSQL and Redis, which its nice value does not reach, is
# spread over twice the time.
BATCH_PACING = {"RECOMMEND_WRITE_PAUSE_RATIO": "1"}
RUNS_LAST = "SELECT coalesce(max(id), 0) FROM recommendations_recommendationrun"
RUNS_LISTS_WRITTEN_SINCE = (
    "SELECT coalesce(sum(lists_written), 0) FROM recommendations_recommendationrun WHERE id > {}"
)


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


def verify_target(server: Server, scenario: Scenario) -> None:
    """One request by hand before the load, so a missing endpoint or a bad key fails clearly."""
    spec = scenario.probe or scenario.plan["requests"][0]
    request = urllib.request.Request(
        server.url + spec["path"],
        data=spec.get("body", "").encode() if spec.get("body") else None,
        method=spec["method"],
        headers=scenario.plan["headers"],
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
    except urllib.error.HTTPError as error:
        raise BenchError(
            f"{spec['method']} {spec['path']} answered {error.code}: "
            f"{error.read()[:300].decode(errors='replace')}\n{log_tail(server.log)}"
        ) from None
    must = scenario.plan.get("body_must_contain")
    if must and must.encode() not in body:
        raise BenchError(f"{spec['path']} answered without {must}: {body[:300]!r}")


def run(args: argparse.Namespace) -> dict:
    preflight()
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-api-")))
        database_url = database_create(stack)
        redis_flush(stack)
        info = setup(database_url, folder, args)
        database_settle(database_url)
        args.batch_cgroup = idle_cgroup_create(stack) if args.scenario == "latency-batch" else None
        scenario = SCENARIOS[args.scenario](info, info["secret_key"], args)
        server = server_start(stack, database_url, folder, args.server)
        scenario.plan.update(timeout_ms=10000, max_sockets=args.max_sockets)
        plan_file = folder / "plan.json"
        plan_file.write_text(json.dumps(scenario.plan))
        verify_target(server, scenario)
        print(
            f"server: {shlex.join([Path(server.command[0]).name, *server.command[1:]])}", flush=True
        )
        background = None
        # tasks in-process: e.g. `manage.py recommend --all` computes the batch here
        background_env = {
            **django_env(database_url, folder),
            "CELERY_TASK_ALWAYS_EAGER": "true",
            **(scenario.background_env or {}),
        }
        per_step = any(step.background_prefix is not None for step in scenario.steps)
        if scenario.background and not per_step:
            background = subprocess.Popen(
                scenario.background,
                cwd=REPO,
                env=background_env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            stack.callback(background_stop, background)
        beside = (scenario.background, background_env) if scenario.background and per_step else None
        lists_before = cached_lists()
        results = []
        for step in scenario.steps:
            last_run = sql_count(database_url, RUNS_LAST)
            result = step_run(server, plan_file, step, beside)
            if "background" in result:
                result["background"]["lists_written"] = sql_count(
                    database_url, RUNS_LISTS_WRITTEN_SINCE.format(last_run)
                )
            results.append(result)
            print(step_line(result), flush=True)
            if "background" in result:
                print(f"    {batch_coverage(result['background'])}", flush=True)
            if server.process.poll() is not None:
                raise BenchError(f"the server died:\n{log_tail(server.log)}")
            if scenario.stop_when_saturated and step.curve and saturated(result):
                print("  saturated: stopping the curve here", flush=True)
                break
            time.sleep(args.pause)
        server_stop(server)
        compared = []
        target = next((r for r in results if r["label"] == f"{args.target_rate:g}/s"), None)
        for model in args.compare if target else []:
            # The same measured step at the target rate on another worker model.
            with contextlib.ExitStack() as other:
                server = server_start(other, database_url, folder, model)
                step = Step(
                    str(model), args.target_rate, args.duration, args.warmup, len(info["user_ids"])
                )
                result = step_run(server, plan_file, step)
                compared.append(result)
                print(step_line(result), flush=True)
            time.sleep(args.pause)
        checked = scenario.check(results)
        checked.update(cached_lists_before=lists_before, cached_lists_after=cached_lists())
        if checked["cached_lists_after"] < lists_before:
            print(
                f"  warning: {lists_before - checked['cached_lists_after']:,} cached lists "
                "vanished from Redis during the run (did something empty the database?)",
                flush=True,
            )
        errors_logged = log_tail(server.log, 20)
    info.pop("user_ids", None)
    info.pop("item_ids", None)
    info.pop("secret_key", None)
    return {
        "info": info,
        "results": results,
        "compared": compared,
        "check": checked,
        "server_log": errors_logged,
        "batch_cgroup": str(args.batch_cgroup) if args.batch_cgroup else None,
    }


# --- the report -----------------------------------------------------------------------------


def latency_table(results: list[dict], first_column: str) -> list[str]:
    rows = [
        f"| {first_column} | achieved req/s | p50 ms | p90 ms | p99 ms | max ms "
        "| p99 from send ms | not 2xx | server CPU ms per request | server cores "
        "| generator cores | load avg (1 min) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        due, send = r["latency_from_due_ms"], r["latency_from_send_ms"]
        rows.append(
            f"| {r['label']} | {r['achieved_per_s']:,.0f} | {fmt(due['p50'])} | "
            f"{fmt(due['p90'])} | {fmt(due['p99'])} | {fmt(due['max'])} | {fmt(send['p99'])} | "
            f"{r['sent'] - r['ok']} | {cpu_per_request(r)} | {r['server_cores']:.2f} | "
            f"{r['generator_cores']:.2f} | {r['load_before'][0]:.2f} |"
        )
    return rows


def markdown_latency(outcome: dict, args: argparse.Namespace, command: str) -> str:
    results = outcome["results"]
    target = next((r for r in results if r["label"] == f"{args.target_rate:g}/s"), None)
    if target is None:
        verdict = f"Verdict: the curve stopped before {args.target_rate:g} req/s (saturated)."
    else:
        p99 = target["latency_from_due_ms"]["p99"]
        ok = p99 <= args.target_p99_ms and target["ok"] == target["sent"]
        verdict = (
            f"Verdict: p99 at {args.target_rate:g} req/s is {p99:.1f} ms "
            f"({'meets' if ok else 'misses'} the target of ≤ {args.target_p99_ms:g} ms"
            f"{'' if target['ok'] == target['sent'] else ', with failed requests'})."
        )
    if target is not None:
        others = target["machine_cores"] - target["server_cores"] - target["generator_cores"]
        verdict += (
            f" During that step the machine's 2 cores were {target['machine_cores'] / 2:.0%} "
            f"busy: the server {target['server_cores']:.2f} cores, the generator "
            f"{target['generator_cores']:.2f}, everything else (PostgreSQL, Redis, other work "
            f"on the machine) {max(0.0, others):.2f}."
        )
    last = [r for r in results if r["label"].endswith("/s")]
    if last and saturated(last[-1]):
        verdict += (
            f" The curve stops at {last[-1]['label']}: past the rate the server keeps up with, "
            "requests only queue (more than 10% unanswered, or p99 over 1 s)."
        )
    compared = []
    if outcome["compared"]:
        compared = [
            "",
            f"The same {args.duration:g} s at {args.target_rate:g} req/s (after "
            f"{args.warmup:g} s of warm-up) on other servers, each started afresh, after "
            f"the curve; the curve's own row at that rate is {args.server}:",
            "",
            *latency_table(outcome["compared"], "server at the target rate"),
        ]
    check = outcome["check"]
    return "\n".join(
        [
            *heading("API latency", command, outcome),
            *latency_table(results, "offered req/s"),
            "",
            verdict,
            *compared,
            "",
            *describe(outcome, args),
            "",
            f"Cached lists in Redis before the load and after it: "
            f"{check['cached_lists_before']:,} and {check['cached_lists_after']:,}.",
        ]
    )


def cpu_per_request(result: dict) -> str:
    """The server's CPU milliseconds per answered request over the step (warm-up included)."""
    answered = result["answered_all"]
    return f"{result['server_cpu_s'] * 1000 / answered:.2f}" if answered else "–"


def fmt_load(load: tuple[float, float, float]) -> str:
    return ", ".join(f"{v:.2f}" for v in load)


def heading(title: str, command: str, outcome: dict) -> list[str]:
    """A section's title and the line saying what ran, where, when and on how busy a machine."""
    return [
        f"## {title}",
        "",
        f"Command: `{command}` — {time.strftime('%Y-%m-%d')}, {machine()}. Load average "
        f"(1, 5, 15 min) before the run: {fmt_load(outcome['load_start'])}; after: "
        f"{fmt_load(outcome['load_end'])}.",
        "",
    ]


def describe(outcome: dict, args: argparse.Namespace) -> list[str]:
    info = outcome["info"]
    poisson = (
        "; the *Poisson* row at random moments, exponential gaps at the same mean rate"
        if any(r["arrivals"] == "poisson" for r in outcome["results"])
        else ""
    )
    s = info["seconds"]
    return [
        f"`GET /api/v1/recommendations/?placement={PLACEMENT}&user=<id>&k={args.k}` with a "
        "secret key in `Authorization: Bearer`, each request for a user drawn at random from "
        f"the {info['users_with_cached_list']:,} users with a cached list (of "
        f"{info['users']:,} users, {info['items']:,} items, {info['interactions']:,} events, "
        f"synthetic publisher seed {args.seed}); lists computed by the batch "
        f"(`recommendations_compute_all_in_process`, {info['lists_written']:,} lists) into "
        "Redis. Every answer was checked for an `items` array. *every user once*: before the "
        "curve, each user's first request after the batch, in random order at the target "
        "rate, starting with the per-process caches of placements and item details empty. "
        "*server CPU ms per request*: the server's processes' CPU time over the step divided by "
        "the requests answered. Setup: import "
        f"{s['import']:.0f} s, train {s['train']:.0f} s, compute {s['compute']:.0f} s.",
        "",
        f"Server: {args.server}, `recsite.wsgi`, on 127.0.0.1 with production "
        "settings (`RECSITE_ENV=production`, DEBUG off, "
        "behind a TLS proxy: the client sends `X-Forwarded-Proto: https`); PostgreSQL and Redis "
        "on the same machine. " + WORKER_REASON,
        "",
        "Load: `benchmarks/loadgen/openloop.js`, an open-loop generator on Node.js's own HTTP "
        f"client (keep-alive, up to {args.max_sockets} sockets): requests leave on a fixed "
        f"schedule (evenly spaced{poisson}), {args.warmup:g} s of warm-up "
        f"then {args.duration:g} s measured per rate, whether or not earlier requests were "
        "answered. Latency is measured from the moment each request was due, so a server that "
        "stalls is charged for every request that waited (no coordinated omission); it includes "
        "the generator's own lateness (Node's timers: about 0.5 ms at the median). *p99 from "
        "send* starts the clock when the request was handed to the socket instead. Percentiles "
        "are exact (nearest rank over every measured request). Server, generator: CPU cores "
        "each used over the step; the generator, PostgreSQL and Redis share the 2 cores with "
        "the server. " + TOOL_REASON,
    ]


WORKER_REASON = (
    "Why granian: its HTTP layer is Rust, outside the GIL; one worker process per core "
    "and one Python thread each. A request is mostly Python under the GIL, so more processes "
    "than cores only add switching, and more threads per process only queue for the GIL; "
    "parsing HTTP, keeping connections alive and the socket work run in Rust threads that "
    "never wait for it. The comparison rows show, at the target rate in the same run, "
    "granian with 4 threads per worker and gunicorn's `gthread` workers (the server until "
    "2026-11-27), whose HTTP loop is Python."
)
TOOL_REASON = (
    "Why this generator: none of the tools this machine can install is open-loop with a path "
    "per request. `hey` paces each worker but sends one URL; `wrk` varies paths from Lua but "
    "has no rate (closed loop); autocannon's `-R` lets each connection send back-to-back until "
    "its quota for the current second is used and then waits for the next second (bursts, and "
    "each connection still waits for its answer), and its correction for coordinated omission "
    "assumes an interval of ceil(1 / rate) ms, 1 ms, whatever the rate. wrk2, vegeta and k6 "
    "are not in Debian's or npm's registries."
)


def batch_coverage(background: dict) -> str:
    """How the batch runs of a step lay over its measured window, in one sentence."""
    w0, w1 = background["window"]
    runs = background["runs"]
    if not runs:
        return "the batch never started"
    covered, gap = 0.0, 0.0
    previous_end = w0
    for r in runs:
        start, end = max(r["started"], w0), min(r["ended"] if r["ended"] is not None else w1, w1)
        if end > start:
            covered += end - start
            gap = max(gap, start - previous_end)
            previous_end = end
    gap = max(gap, w1 - previous_end)
    whole = [r for r in runs if not r["killed"] and r["returncode"] == 0]
    took = ", ".join(f"{r['ended'] - r['started']:.1f} s" for r in whole) or "none finished"
    last = runs[-1]
    return (
        f"{len(runs)} run{'s' if len(runs) > 1 else ''} from {runs[0]['started']:.1f} s to "
        f"{last['ended']:.1f} s of the step (measured window {w0:.1f}–{w1:.1f} s): "
        f"{covered / (w1 - w0):.0%} of the window under recomputation, largest gap "
        f"{gap:.2f} s; whole runs took {took}"
        + ("; the last was stopped at the step's end" if last["killed"] else "")
        + (
            f"; {background['lists_written']:,} lists written in the step"
            if "lists_written" in background
            else ""
        )
        + (f" ({whole[0]['summary'].rstrip('.')})" if whole else "")
    )


def markdown_latency_batch(outcome: dict, args: argparse.Namespace, command: str) -> str:
    results = outcome["results"]
    rows = latency_table(results, "step")
    coverage = [
        f"- *{r['label']}*: {batch_coverage(r['background'])}."
        for r in results
        if "background" in r
    ]

    def row(label: str) -> dict | None:
        return next((r for r in results if r["label"] == f"{args.target_rate:g}/s, {label}"), None)

    target = row("batch at low priority")
    if target is None:
        verdict = "Verdict: no step at the target rate with the batch."
    else:
        p99 = target["latency_from_due_ms"]["p99"]
        runs = target["background"]["runs"]
        w0, w1 = target["background"]["window"]
        overlapped = (
            bool(runs) and runs[0]["started"] <= w0 + 0.5 and (runs[-1]["ended"] or 0) >= w1 - 0.5
        )
        ok = p99 <= args.target_p99_ms and target["ok"] == target["sent"] and overlapped
        verdict = (
            f"Verdict: with `manage.py recommend --all` recomputing every list beside it at low "
            f"priority (threads limited to 1), p99 at {args.target_rate:g} req/s is "
            f"{p99:.1f} ms: {'meets' if ok else 'misses'} the target of ≤ "
            f"{args.target_p99_ms:g} ms"
            + ("" if target["ok"] == target["sent"] else ", with failed requests")
            + ("" if overlapped else " (the batch did not cover the whole measured window)")
            + "."
        )
        for label, name in (
            ("batch at nice 19, autogroup 19", "At nice 19 with its autogroup at 19"),
            ("batch at nice 19 only", "At `nice -n 19` alone"),
            ("batch not niced", "Not niced"),
            ("no batch", "Without the batch, at the start"),
            ("no batch, again", "Without the batch, at the end"),
        ):
            other = row(label)
            if other is not None:
                verdict += f" {name}: p99 {other['latency_from_due_ms']['p99']:.1f} ms."
    check = outcome["check"]
    return "\n".join(
        [
            *heading("API latency during a batch recomputation", command, outcome),
            *rows,
            "",
            verdict,
            "",
            "The batch: `"
            + shlex.join(["python", "manage.py", "recommend", "--all", "--verbosity", "0"])
            + "` against the bench database, in process (`CELERY_TASK_ALWAYS_EAGER=true`, no "
            "workers), with `OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1` and "
            "`RECOMMEND_WRITE_PAUSE_RATIO=1` (after writing each 500 users' lists it rests as "
            "long as the write took), in a session of its own (as a worker started under "
            "systemd, ssh or its own terminal is). "
            + (
                "*At low priority*: `nice -n 19` in a CPU cgroup of its own with `cpu.idle` set "
                "(what systemd's `CPUWeight=idle` sets; Linux 5.15 and later), so the scheduler "
                "takes the core from it the moment any other task wakes. *At nice 19, "
                "autogroup 19*: `nice -n 19` and its session's autogroup at 19 (`echo 19 > "
                "/proc/self/autogroup`): a small share, but it keeps each time slice it starts "
                "while the server's threads, which wake for every request, wait behind it. "
                if outcome.get("batch_cgroup")
                else "*At low priority*: no CPU cgroup could be made here (it needs root, or "
                "a delegated cgroup, and Linux 5.15), so `nice -n 19` and its session's "
                "autogroup at 19 (`echo 19 > /proc/self/autogroup`). "
            )
            + "*At nice 19 only*: `nice -n 19` alone. Linux shares the CPU between sessions "
            "(autogroups) before it looks at nice values, so a niced process in a session of "
            "its own takes as much CPU as the whole server; in cgroups (systemd, containers) "
            "the group's weight plays that part. *Not niced*: at the server's priority. In each "
            f"step it starts when the {args.warmup:g} s of warm-up end and starts again each "
            "time it finishes, until the step ends (then the run under way is stopped), so the "
            "whole measured window is under recomputation. Where the runs lay (seconds from "
            "the generator's launch; the window is counted conservatively, from the end of the "
            "warm-up to the generator's exit):",
            "",
            *coverage,
            "",
            "*no batch*: the same load alone, for reference, first and last (the machine is "
            "shared: the two show how much it drifted over the run). *every user once*: as in *API "
            "latency*, no batch. *server cores* is the server alone; the batch's CPU is in "
            "neither column.",
            "",
            *[
                line.replace(
                    "The comparison rows show, at the target rate in the same run,",
                    "*API latency* compares, at the target rate,",
                )
                for line in describe(outcome, args)
            ],
            "",
            f"Cached lists in Redis before the load and after it: "
            f"{check['cached_lists_before']:,} and {check['cached_lists_after']:,}.",
        ]
    )


def markdown_events(outcome: dict, args: argparse.Namespace, command: str) -> str:
    results, check = outcome["results"], outcome["check"]
    rows = [
        "| offered events/s | requests/s | achieved events/s | p50 ms | p99 ms | max ms "
        "| not 2xx | server cores | load avg (1 min) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        due = r["latency_from_due_ms"]
        rows.append(
            f"| {r['label'].split()[0]} | {r['rate']:,.1f} | "
            f"{r['achieved_per_s'] * r['per_request']:,.0f} | {fmt(due['p50'])} | "
            f"{fmt(due['p99'])} | {fmt(due['max'])} | {r['sent'] - r['ok']} | "
            f"{r['server_cores']:.2f} | {r['load_before'][0]:.2f} |"
        )
    return "\n".join(
        [
            *heading("Events API throughput", command, outcome),
            *rows,
            "",
            f"`POST /api/v1/events/` with {args.batch} new events per request (unique event ids, "
            "known users and items), open-loop as in *API latency*. Count in = count stored: "
            f"{check['events_answered_200']:,} events answered 200, {check['events_stored']:,} "
            f"stored, {check['lost']:,} lost ({check['events_sent']:,} sent).",
        ]
    )


# --- main -----------------------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="latency")
    parser.add_argument("--rates", type=lambda s: [float(v) for v in s.split(",")], default=None)
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per rate")
    parser.add_argument("--warmup", type=float, default=5.0, help="warm-up seconds per rate")
    parser.add_argument("--pause", type=float, default=2.0, help="seconds between rates")
    parser.add_argument("--short", action="store_true", help="a quick pass: fewer rates, 5 s")
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=4_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--batch", type=int, default=100, help="events per request (events)")
    parser.add_argument(
        "--server",
        type=WorkerModel.parse,
        default=WorkerModel.parse("granian:2:1"),
        help="the server: granian:workers[:threads], or a gunicorn worker model "
        "class:workers[:threads], e.g. sync:3 or gthread:2:4",
    )
    parser.add_argument(
        "--compare",
        type=lambda text: [WorkerModel.parse(t) for t in text.split(",") if t],
        default=[WorkerModel.parse("granian:2:4"), WorkerModel.parse("gthread:2:4")],
        help="other servers to measure at the target rate, e.g. granian:2:4,gthread:2:4 "
        "('' for none)",
    )
    parser.add_argument("--max-sockets", type=int, default=512)
    parser.add_argument("--target-rate", type=float, default=500.0)
    parser.add_argument("--target-p99-ms", type=float, default=10.0)
    parser.add_argument("--no-prime", dest="prime", action="store_false")
    parser.add_argument("--no-poisson", dest="poisson", action="store_false")
    parser.add_argument("--no-write", dest="write", action="store_false")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--setup-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.short:
        args.duration, args.warmup, args.pause = 5.0, 2.0, 1.0
        if args.rates is None and args.scenario == "latency":
            args.rates = [100, 500, 1000]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.setup_child:
        setup_child(json.loads(args.setup_child))
        return 0
    given = sys.argv[1:] if argv is None else argv
    command = shlex.join(["python", "benchmarks/api_latency.py", *given])
    # A plain `kill` still stops the server and drops the database (the stack unwinds).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    load_start = os.getloadavg()
    try:
        outcome = run(args)
    except BenchError as error:
        print(f"api_latency: {error}", file=sys.stderr)
        return 1
    outcome.update(load_start=load_start, load_end=os.getloadavg())
    if args.json:
        args.json.write_text(json.dumps(outcome, indent=2, default=str))
    if args.scenario == "latency":
        body, section = markdown_latency(outcome, args, command), "api-latency"
    elif args.scenario == "latency-batch":
        body, section = markdown_latency_batch(outcome, args, command), "api-batch"
    else:
        body, section = markdown_events(outcome, args, command), "api-events"
    print(body)
    if args.write:
        section_write(section, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
