"""Scale benchmark: fit + top-k for every user on synthetic data, from 100k to 1M users.

Items are fixed (50k by default) and interactions grow with the users (20 per user by default),
so the largest size is the issue's 1M users x 50k items x 20M interactions. Each size runs in
fresh subprocesses: one generates the data (`generate_scale`) into a temporary pickle, another
loads it, fits `HybridRecommender()` with its defaults and recommends top-k for every user; that
second process reports its own peak RSS (`getrusage`), so the memory figure is the engine's
plus the input frames, not the generator's. Optionally (`--quality-users`, on by default) a
last process checks the largest size's quality on a per-user temporal split against popularity.

    python benchmarks/scale.py [--sizes 100000 250000 500000 1000000] [--items 50000]
        [--per-user 20] [--k 20] [--quality-users 50000] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import pickle
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.results import RESULTS, section_write, stamp  # noqa: E402
from recommendations.engine import HybridRecommender  # noqa: E402
from recommendations.engine.als import available_threads  # noqa: E402
from recommendations.engine.evaluation import ranking_metrics, temporal_split  # noqa: E402
from recommendations.synthetic import generate_scale  # noqa: E402

DEFAULT_SIZES = [100_000, 250_000, 500_000, 1_000_000]
SEED = 7
TARGET_SECONDS = 15 * 60
TARGET_RSS_GB = 12.0
POPULARITY = {
    "cf_algorithm": "none",
    "content_weight": 0.0,
    "popularity_weight": 1.0,
}


def peak_rss_gb() -> float:
    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


# ------------------------------------------------------------------ child processes
def child_generate(job: dict) -> dict:
    started = time.perf_counter()
    data = generate_scale(
        n_users=job["users"],
        n_items=job["items"],
        n_interactions=job["interactions"],
        seed=SEED,
    )
    seconds = time.perf_counter() - started
    with open(job["path"], "wb") as fh:
        pickle.dump((data.interactions, data.items, data.users), fh, protocol=5)
    return {"generate_s": seconds, "interactions": len(data.interactions)}


def child_run(job: dict) -> dict:
    with open(job["path"], "rb") as fh:
        interactions, items, users = pickle.load(fh)
    loaded_gb = peak_rss_gb()
    model = HybridRecommender(random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        started = time.perf_counter()
        model.fit(interactions, items, users)
        fit_s = time.perf_counter() - started
    fit_gb = peak_rss_gb()
    user_ids = users["user_id"].to_numpy()
    started = time.perf_counter()
    recs = model.recommend(user_ids, k=job["k"])
    recommend_s = time.perf_counter() - started
    return {
        "algorithm": model.algorithm_,
        "content_embedding": model.content_.embedding is not None,
        "fit_s": fit_s,
        "recommend_s": recommend_s,
        "rows": len(recs),
        "users_listed": int(recs["user_id"].nunique()),
        "loaded_gb": loaded_gb,
        "fit_peak_gb": fit_gb,
        "peak_gb": peak_rss_gb(),
        "warnings": sorted({f"{w.category.__name__}: {w.message}"[:160] for w in caught}),
    }


def child_quality(job: dict) -> dict:
    """Per-user temporal split (last 20% of each user's events), test = items new to the user;
    hybrid vs popularity on a random sample of test users."""
    with open(job["path"], "rb") as fh:
        interactions, items, users = pickle.load(fh)
    train, test = temporal_split(interactions, test_size=0.2, by_user=True)
    del interactions
    test = test[["user_id", "item_id"]].drop_duplicates()

    def pairs(frame: pd.DataFrame) -> np.ndarray:  # generate_scale ids are integers from 0
        return frame["user_id"].to_numpy(np.int64) * len(items) + frame["item_id"].to_numpy()

    test = test[~np.isin(pairs(test), pairs(train))]
    rng = np.random.default_rng(0)
    test_users = pd.unique(test["user_id"])
    sample = rng.choice(test_users, size=min(job["sample"], len(test_users)), replace=False)
    test = test[test["user_id"].isin(sample)]
    result = {"sample_users": len(sample), "test_pairs": len(test)}
    for name, params in (("hybrid", {"random_state": 0}), ("popularity", POPULARITY)):
        model = HybridRecommender(**params).fit(train, items, users)
        recs = model.recommend(sample, k=job["k"])
        metrics = ranking_metrics(recs, test, job["k"])
        result[name] = {"recall": metrics["recall_at_k"], "ndcg": metrics["ndcg_at_k"]}
    return result


CHILDREN = {"generate": child_generate, "run": child_run, "quality": child_quality}


def spawn(kind: str, job: dict) -> dict:
    """Run one child in a fresh interpreter; its last stdout line is the JSON result."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, json.dumps(job)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{kind} child failed for {job}:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_s"] = time.perf_counter() - started
    return result


# ------------------------------------------------------------------ the table
def measure(sizes: list[int], n_items: int, per_user: int, k: int, quality_users: int):
    rows, quality = [], None
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as tmp:
        for n_users in sizes:
            path = str(Path(tmp) / f"data-{n_users}.pkl")
            job = {
                "users": n_users,
                "items": n_items,
                "interactions": n_users * per_user,
                "path": path,
                "k": k,
            }
            generated = spawn("generate", job)
            ran = spawn("run", job)
            row = {"users": n_users, "items": n_items, **generated, **ran}
            rows.append(row)
            print(
                f"{n_users:>9,} users: generate {row['generate_s']:.1f} s, fit "
                f"{row['fit_s']:.1f} s, recommend {row['recommend_s']:.1f} s, peak RSS "
                f"{row['peak_gb']:.2f} GB ({row['algorithm']})",
                flush=True,
            )
            if quality_users and n_users == max(sizes):
                quality = spawn("quality", {**job, "sample": quality_users})
                print(f"quality: {quality}", flush=True)
            Path(path).unlink()
    return rows, quality


def markdown(rows: list[dict], quality: dict | None, per_user: int, k: int, command: str) -> str:
    first = rows[0]
    lines = [
        f"## Scale: synthetic users x {first['items']:,} items, fit + top-{k} for every user",
        "",
        stamp(command),
        "",
        "| users | items | interactions | algorithm | fit s | recommend s | fit + recommend s "
        "| µs per user listed | time × | peak RSS GB | of which input frames GB | memory × |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        total = r["fit_s"] + r["recommend_s"]
        lines.append(
            f"| {r['users']:,} | {r['items']:,} | {r['interactions']:,} | {r['algorithm']} | "
            f"{r['fit_s']:.1f} | {r['recommend_s']:.1f} | {total:.1f} | "
            f"{r['recommend_s'] / r['users'] * 1e6:.0f} | "
            f"{total / (first['fit_s'] + first['recommend_s']):.2f} | {r['peak_gb']:.2f} | "
            f"{r['loaded_gb']:.2f} | {r['peak_gb'] / first['peak_gb']:.2f} |"
        )
    largest = rows[-1]
    total = largest["fit_s"] + largest["recommend_s"]
    verdict = (
        "meets" if total <= TARGET_SECONDS and largest["peak_gb"] <= TARGET_RSS_GB else "misses"
    )
    warned = sorted({w for r in rows for w in r["warnings"]})
    lines += [
        "",
        f"Items fixed at {first['items']:,}; interactions scale with users "
        f"({per_user} per user, `generate_scale(seed={SEED})`); every user in the users frame "
        f"(those without interactions too) gets a top-{k} list with seen items excluded. "
        "`HybridRecommender(random_state=0)` with its defaults: past 20k items that means ALS "
        "(`implicit`, 64 factors, 15 iterations) and a rank-64 SVD of the item features for "
        "content, nothing dense item x item. Each size runs in fresh processes: the data is "
        "generated in one and pickled, a second loads it, fits and recommends, and reports its "
        "own peak RSS (`getrusage`, includes the input frames, whose size after loading is "
        "shown); `×` columns are relative to the smallest size. "
        f"{available_threads()} threads (ALS and scoring), BLAS held to 1 thread meanwhile. "
        "The machine is shared, so times carry some noise from other work. "
        f"Target at the largest size: fit + recommend ≤ {TARGET_SECONDS // 60} min and peak "
        f"≤ {TARGET_RSS_GB:.0f} GB; this run {verdict} it "
        f"({total / 60:.1f} min, {largest['peak_gb']:.2f} GB). "
        + (
            "Warnings during fit: " + "; ".join(warned) + "."
            if warned
            else "No warning during fit (in particular none from `implicit` about BLAS threads)."
        ),
    ]
    if quality:
        h, p = quality["hybrid"], quality["popularity"]
        lines += [
            "",
            f"Quality at {largest['users']:,} users: per-user temporal split (each user's last "
            "20% of events held out; test = held-out items the user had not touched before), "
            f"both models fitted on the train part, top-{k} for a random sample of "
            f"{quality['sample_users']:,} test users ({quality['test_pairs']:,} test pairs):",
            "",
            f"| model | Recall@{k} | nDCG@{k} |",
            "| --- | --- | --- |",
            f"| hybrid (defaults) | {h['recall']:.4f} | {h['ndcg']:.4f} |",
            f"| popularity | {p['recall']:.4f} | {p['ndcg']:.4f} |",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=DEFAULT_SIZES, help="users")
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--per-user", type=int, default=20, help="interactions per user")
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument(
        "--quality-users",
        type=int,
        default=50_000,
        help="test users sampled for the quality check at the largest size (0: skip)",
    )
    parser.add_argument(
        "--no-write", dest="write", action="store_false", help="print only, leave RESULTS.md alone"
    )
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, job = args.child
        print(json.dumps(CHILDREN[kind](json.loads(job))))
        return 0
    sizes = sorted(args.sizes)
    rows, quality = measure(sizes, args.items, args.per_user, args.k, args.quality_users)
    command = "python benchmarks/scale.py"
    if sizes != DEFAULT_SIZES:
        command += f" --sizes {' '.join(map(str, sizes))}"
    for flag, value, default in (
        ("--items", args.items, 50_000),
        ("--per-user", args.per_user, 20),
        ("--k", args.k, 20),
        ("--quality-users", args.quality_users, 50_000),
    ):
        if value != default:
            command += f" {flag} {value}"
    section = markdown(rows, quality, args.per_user, args.k, command)
    print(section)
    if args.write:
        section_write("scale", section)
        print(f"wrote {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
