"""One run of a scenario: services, data, server, the steps of load, the comparison servers and
the check; everything it starts is stopped and dropped however the run ends."""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.api_load.config import REPO, BenchError
from benchmarks.api_load.fixtures import setup
from benchmarks.api_load.load import Step, saturated, step_line, step_run, verify_target
from benchmarks.api_load.priority import idle_cgroup_create
from benchmarks.api_load.report import batch_coverage
from benchmarks.api_load.scenarios import SCENARIOS
from benchmarks.api_load.servers import background_stop, log_tail, server_start, server_stop
from benchmarks.api_load.services import (
    cached_lists,
    database_create,
    database_settle,
    django_env,
    preflight,
    redis_flush,
    sql_count,
)

RUNS_LAST = "SELECT coalesce(max(id), 0) FROM recommendations_recommendationrun"
RUNS_LISTS_WRITTEN_SINCE = (
    "SELECT coalesce(sum(lists_written), 0) FROM recommendations_recommendationrun WHERE id > {}"
)


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
