"""The load generator driver: the plan and steps of a scenario, one step of open-loop load from
`benchmarks/loadgen/openloop.js` (with a command run again and again beside it if asked),
and the request tried by hand before the load."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.api_load.config import LOADGEN, REPO, BenchError
from benchmarks.api_load.servers import Server, background_stop, log_tail, machine_busy_seconds


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
