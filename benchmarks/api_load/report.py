"""The report: the three sections written into RESULTS.md (*API latency*, *API latency during
a batch recomputation*, *Events API throughput*), under one shared `heading`."""

from __future__ import annotations

import argparse
import shlex
import time

from benchmarks.api_load.config import PLACEMENT
from benchmarks.api_load.load import fmt, saturated
from benchmarks.results import machine


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
