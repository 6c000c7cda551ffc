"""Refresh benchmark: one user's list recomputed after a new event, against a fitted model.

The fast path is `HybridRecommender.recommend_for_history`: no refit; EASE scores the history row
against its item x item weights, ALS folds the user in with one small solve. Each call takes a
random known user's events plus one new click, as the per-user refresh service does (events
frame, `user_id`, the servable items as `candidates`, `explain=True`); a second row times the
bare call (item ids only). Latencies are wall-clock per call, after a few warm-up calls.

Models: the demo size (`generate()` defaults: 2000 users x 600 items, EASE), a 50k-item ALS
model and a 20k-item EASE model (the largest catalogue EASE is chosen for), the latter two on
`generate_scale` data.

    python benchmarks/refresh.py [--calls 300] [--k 20] [--no-large] [--no-write]
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
from recommendations.engine import HybridRecommender  # noqa: E402
from recommendations.synthetic import generate, generate_scale  # noqa: E402

TARGET_MS = 50.0
WARMUP = 5
SEED = 7
UNAVAILABLE_SHARE = 0.03  # items left out of `candidates`, as unavailable items are
# name, generate_scale arguments (None: the demo data from generate())
MODELS = [
    ("demo", None),
    ("50k items", {"n_users": 100_000, "n_items": 50_000, "n_interactions": 2_000_000}),
    ("20k items", {"n_users": 50_000, "n_items": 20_000, "n_interactions": 1_000_000}),
]


def frames(scale: dict | None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    if scale is None:
        data = generate(seed=SEED).engine_frames()
    else:
        data = generate_scale(**scale, seed=SEED)
    return data.interactions, data.items, data.users


def describe(scale: dict | None) -> str:
    if scale is None:
        return f"generate(seed={SEED})"
    args = ", ".join(f"{key}={value:_}" for key, value in scale.items())
    return f"generate_scale({args}, seed={SEED})"


def latencies(call, n: int) -> np.ndarray:
    for i in range(WARMUP):
        call(i)
    out = np.empty(n)
    for i in range(n):
        started = time.perf_counter()
        call(i)
        out[i] = time.perf_counter() - started
    return out * 1000.0


def measure(name: str, scale: dict | None, calls: int, k: int) -> list[dict]:
    interactions, items, users = frames(scale)
    started = time.perf_counter()
    model = HybridRecommender(random_state=0).fit(interactions, items, users)
    fit_s = time.perf_counter() - started
    rng = np.random.default_rng(0)
    events = interactions[["user_id", "item_id", "timestamp", "event_type", "event_value"]]
    by_user = events.groupby("user_id", observed=True, sort=False).indices
    picked = rng.choice(np.array(list(by_user), dtype=object), size=calls + WARMUP)
    labels = model.item_map_.labels
    candidates = labels[rng.random(len(labels)) >= UNAVAILABLE_SHARE]
    now = pd.Timestamp(interactions["timestamp"].max()) + pd.Timedelta(minutes=1)
    clicks = rng.integers(0, len(labels), size=calls + WARMUP)

    def history(i: int) -> pd.DataFrame:
        past = events.iloc[by_user[picked[i]]]
        click = {"user_id": picked[i], "item_id": labels[clicks[i]], "timestamp": now}
        new = pd.DataFrame([{**click, "event_type": "click", "event_value": np.nan}])
        return pd.concat([past, new.astype(past.dtypes.to_dict())], ignore_index=True)

    histories = [history(i) for i in range(calls + WARMUP)]
    ids = [list(h["item_id"]) for h in histories]

    def service_call(i: int):
        return model.recommend_for_history(
            histories[i], k=k, user_id=picked[i], candidates=candidates, explain=True
        )

    def bare_call(i: int):
        return model.recommend_for_history(ids[i], k=k)

    rows = []
    for call_name, call in (
        ("events + candidates + explain", service_call),
        ("item ids", bare_call),
    ):
        ms = latencies(call, calls)
        rows.append(
            {
                "model": name,
                "users": len(model.user_map_),
                "items": len(labels),
                "algorithm": model.algorithm_,
                "fit_s": fit_s,
                "data": describe(scale),
                "call": call_name,
                "history": float(np.median([len(h) for h in histories])),
                "p50": np.percentile(ms, 50),
                "p95": np.percentile(ms, 95),
                "p99": np.percentile(ms, 99),
                "max": ms.max(),
            }
        )
        print(
            f"{name} ({model.algorithm_}, {call_name}): p50 {rows[-1]['p50']:.2f} ms, "
            f"p95 {rows[-1]['p95']:.2f} ms, p99 {rows[-1]['p99']:.2f} ms",
            flush=True,
        )
    return rows


def markdown(rows: list[dict], calls: int, k: int, command: str) -> str:
    lines = [
        "## Refresh: one user's list after a new event",
        "",
        stamp(command),
        "",
        "| model | users x items | algorithm | call | p50 ms | p95 ms | p99 ms | max ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['users']:,} x {r['items']:,} | {r['algorithm']} | {r['call']} "
            f"| {r['p50']:.2f} | {r['p95']:.2f} | {r['p99']:.2f} | {r['max']:.2f} |"
        )
    worst = max(r["p99"] for r in rows)
    per_model = {r["model"]: r for r in rows}
    fits = ", ".join(f"{m} {r['fit_s']:.0f} s" for m, r in per_model.items())
    history = ", ".join(f"{m} {r['history']:.0f}" for m, r in per_model.items())
    data = ", ".join(f"{m} `{r['data']}`" for m, r in per_model.items())
    lines += [
        "",
        f"{calls} calls per row after {WARMUP} warm-up calls, top-{k}, one Python thread on a "
        "shared 2-core machine. Each call is `recommend_for_history` for a random user with "
        f"history plus one new click (median events per call: {history}). `events + "
        "candidates + explain` is the per-user refresh service's call: the events frame "
        "(weighted as in `fit`), `user_id`, "
        f"{1 - UNAVAILABLE_SHARE:.0%} of the catalogue as `candidates` and `explain=True`; "
        "`item ids` passes the history's item ids only. "
        "`HybridRecommender(random_state=0)` with its defaults (EASE up to 20k items, the "
        f"largest catalogue here that picks it, ALS beyond); data: {data}. "
        f"Fit times, not part of the refresh: {fits}. "
        f"Target ≤ {TARGET_MS:.0f} ms per refresh: "
        + ("met" if worst <= TARGET_MS else "missed")
        + f" (worst p99 {worst:.1f} ms).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--no-large", dest="large", action="store_false", help="the demo size only")
    parser.add_argument(
        "--no-write", dest="write", action="store_false", help="print only, leave RESULTS.md alone"
    )
    args = parser.parse_args(argv)
    rows = []
    for name, scale in MODELS if args.large else MODELS[:1]:
        rows += measure(name, scale, args.calls, args.k)
    command = "python benchmarks/refresh.py"
    if args.calls != 300:
        command += f" --calls {args.calls}"
    if args.k != 20:
        command += f" --k {args.k}"
    if not args.large:
        command += " --no-large"
    section = markdown(rows, args.calls, args.k, command)
    print(section)
    if args.write:
        section_write("refresh", section)
        print(f"wrote {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
