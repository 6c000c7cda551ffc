"""Marketer rules: the online path's overhead per request and the batch path's throughput.

A 50k-item synthetic catalogue (`generate_scale`), 20 active rules of every kind. Online: one
user, 100 candidates, k=10, `apply_user` with no rules and with the 20 rules, called in turns
so both see the same machine load; the target is at most 2 ms added per request. Batch: `apply`
over many users' candidates at once.

    python benchmarks/rules.py [--calls 2000] [--users 100000] [--candidates 50] [--no-write]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.results import RESULTS, section_write, stamp  # noqa: E402
from recommendations.engine.conditions import Condition  # noqa: E402
from recommendations.engine.rules import Rule, RulePipeline  # noqa: E402
from recommendations.synthetic import generate_scale  # noqa: E402

NOW = "2026-05-01"
N_ITEMS, ONLINE_CANDIDATES, K = 50_000, 100, 10
TARGET_MS = 2.0


def twenty_rules() -> list[Rule]:
    """Every kind, conditions on list, text, number, date-derived and attribute columns."""

    def when(column: str, operator: str, value: object) -> tuple[Condition, ...]:
        return (Condition(column, operator, value),)

    return [
        Rule(1, "no cooking", "exclude", when("categories", "equals", "Cooking")),
        Rule(2, "no luxury", "exclude", when("price", "gt", 120)),
        Rule(3, "no retired ids", "exclude", when("item_id", "in", list(range(0, 5000, 7)))),
        Rule(4, "affordable only", "include_only", when("price", "lt", 140)),
        Rule(5, "not consumed", "exclude_consumed"),
        Rule(6, "not sent lately", "exclude_recently_sent", days=3),
        Rule(7, "travel week", "boost", when("categories", "equals", "Travel"), multiplier=1.5),
        Rule(8, "beginners", "boost", when("tags", "equals", "beginner"), multiplier=1.2),
        Rule(9, "videos", "boost", when("content_type", "equals", "video"), multiplier=1.3),
        Rule(10, "mid price", "bury", when("price", "between", [50, 100]), multiplier=0.5),
        Rule(11, "intros", "bury", when("title", "contains", "intro"), multiplier=0.8),
        Rule(12, "new this month", "freshness_boost", multiplier=1.4, days=30),
        Rule(13, "new this quarter", "freshness_boost", multiplier=1.1, days=90),
        Rule(14, "three per topic", "cap_per_category", cap=3),
        Rule(15, "two courses per topic", "cap_per_category", when("content_type", "equals", "course"), cap=2),  # noqa: E501
        Rule(16, "pin launch", "pin", item_id=5, position=1),
        Rule(17, "pin partner", "pin", item_id=6, position=3),
        Rule(18, "pin backup", "pin", item_id=7, position=3, priority=200),
        Rule(19, "fitness fans", "boost", when("categories", "equals", "Fitness"), multiplier=2.0, segment="fans"),  # noqa: E501
        Rule(20, "fans skip advanced", "exclude", when("tags", "equals", "advanced"), segment="fans"),  # noqa: E501
    ]  # fmt: skip


def online(items: pd.DataFrame, rules: list[Rule], calls: int, seed: int = 0) -> dict:
    """Per-call milliseconds with no rules and with `rules`, taken in turns: apply_user
    (arrays) and, for reference, apply on the same user's DataFrame."""
    bare = RulePipeline.compile([], items, now=NOW)
    started = time.perf_counter()
    ruled = RulePipeline.compile(rules, items, now=NOW)
    compile_s = time.perf_counter() - started
    rng = np.random.default_rng(seed)
    times: dict[str, list[float]] = {"none": [], "rules": [], "frame none": [], "frame rules": []}
    for call in range(calls):
        ids = rng.choice(N_ITEMS, ONLINE_CANDIDATES, replace=False)
        scores = np.sort(rng.random(ONLINE_CANDIDATES))[::-1]
        context = {
            "consumed": set(rng.choice(N_ITEMS, 50).tolist()),
            "recently_sent": set(rng.choice(N_ITEMS, 20).tolist()),
            "segments": ["fans"] if call % 2 else [],
        }
        frame = pd.DataFrame({"user_id": call, "item_id": ids, "score": scores})
        maps = {
            "consumed": {call: context["consumed"]},
            "recently_sent": {call: context["recently_sent"]},
            "segments": {"fans": {call} if call % 2 else set()},
        }
        for name, pipeline in (("none", bare), ("rules", ruled)):
            started = time.perf_counter()
            pipeline.apply_user(call, ids, scores, K, **context)
            middle = time.perf_counter()
            pipeline.apply(frame, K, **maps)
            times[name].append((middle - started) * 1000)
            times[f"frame {name}"].append((time.perf_counter() - middle) * 1000)
    ms = {name: np.array(values) for name, values in times.items()}
    ms["added"] = ms["rules"] - ms["none"]
    ms["frame added"] = ms["frame rules"] - ms["frame none"]
    return ms | {"compile_s": compile_s}


def batch(items: pd.DataFrame, rules: list[Rule], users: int, per_user: int) -> dict:
    rng = np.random.default_rng(1)
    candidates = pd.DataFrame(
        {
            "user_id": np.repeat(np.arange(users), per_user),
            "item_id": rng.integers(0, N_ITEMS, users * per_user),
            "score": rng.random(users * per_user),
        }
    )
    consumed = {user: set(rng.integers(0, N_ITEMS, 10).tolist()) for user in range(users)}
    fans = set(range(0, users, 3))
    pipeline = RulePipeline.compile(rules, items, now=NOW)
    started = time.perf_counter()
    result = pipeline.apply(candidates, K, consumed=consumed, segments={"fans": fans})
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": len(result.lists), "users": users}


def markdown(on: dict, off: dict, args: argparse.Namespace, command: str) -> str:
    def row(name: str, values: np.ndarray) -> str:
        p50, p95, p99 = np.percentile(values, [50, 95, 99])
        return f"| {name} | {p50:.3f} | {p95:.3f} | {p99:.3f} |"

    p99_added = np.percentile(on["added"], 99)
    verdict = "meets" if p99_added <= TARGET_MS else "misses"
    return "\n".join(
        [
            "## Marketer rules (filter, boost, pin, diversify)",
            "",
            stamp(command),
            "",
            f"Online path (`RulePipeline.apply_user`): one user, {ONLINE_CANDIDATES} candidates, "
            f"k={K}, {N_ITEMS:,} items, {args.calls} calls each with no rules and with 20 active "
            "rules of every kind (3 exclude, include_only, consumed, recently sent, 4 boost, "
            "2 bury, 2 freshness, 2 caps, 3 pins, 2 segment rules), taken in turns. Milliseconds:",
            "",
            "| per request | p50 | p95 | p99 |",
            "| --- | --- | --- | --- |",
            row("no rules", on["none"]),
            row("20 rules", on["rules"]),
            row("added by the 20 rules", on["added"]),
            row("`apply` on the user's DataFrame, no rules", on["frame none"]),
            row("`apply` on the user's DataFrame, 20 rules", on["frame rules"]),
            row("`apply`: added by the 20 rules", on["frame added"]),
            "",
            f"The 20 rules add {np.median(on['added']):.2f} ms at the median and "
            f"{p99_added:.2f} ms at p99: the path {verdict} the {TARGET_MS:g} ms target. "
            f"Compiling them against the catalogue takes {on['compile_s']:.2f} s, once per change "
            "of rules or items. `apply_user` takes the candidates as arrays and the user's "
            "own item sets and segments; `apply` takes DataFrames and maps for many users.",
            "",
            f"Batch path (`RulePipeline.apply`, all users at once): {off['users']:,} users × "
            f"{args.candidates} candidates, the same 20 rules, 10 consumed items per user: "
            f"{off['seconds']:.1f} s, {off['users'] / off['seconds']:,.0f} users/s "
            f"({off['rows']:,} list rows).",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--candidates", type=int, default=50)
    parser.add_argument(
        "--no-write", dest="write", action="store_false", help="print only, leave RESULTS.md alone"
    )
    args = parser.parse_args(argv)
    items = generate_scale(n_users=10, n_items=N_ITEMS, n_interactions=100, seed=7, now=NOW).items
    rules = twenty_rules()
    on = online(items, rules, args.calls)
    off = batch(items, rules, args.users, args.candidates)
    defaults = (args.calls, args.users, args.candidates) == (2000, 100_000, 50)
    options = f" --calls {args.calls} --users {args.users} --candidates {args.candidates}"
    command = "python benchmarks/rules.py" + ("" if defaults else options)
    section = markdown(on, off, args, command)
    print(section)
    if args.write:
        section_write("rules", section)
        print(f"wrote {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
