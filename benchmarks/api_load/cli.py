"""The command line of `benchmarks/api_latency.py`: the options, and the run and report they ask
for (or, in the child, the data setup)."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
from pathlib import Path

from benchmarks.api_load.config import BenchError
from benchmarks.api_load.fixtures import setup_child
from benchmarks.api_load.report import markdown_events, markdown_latency, markdown_latency_batch
from benchmarks.api_load.runner import run
from benchmarks.api_load.scenarios import SCENARIOS
from benchmarks.api_load.servers import WorkerModel
from benchmarks.results import section_write

DESCRIPTION = (
    "The public APIs under real HTTP load: granian on loopback, an open-loop load generator."
)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=DESCRIPTION)
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
