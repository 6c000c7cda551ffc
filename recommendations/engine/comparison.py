"""Compare two sets of recommendation lists for the same users (e.g. in-house vs Personalize).

Each side is a DataFrame `user_id, item_id, rank` (rank from 1; other columns such as `score` are
ignored). Ids are compared as strings, so `42` and `"42"` are the same user or item. Each user's
list is put in rank order, repeated items keep their best rank, and the first `k` items are kept;
their positions 1..n are the ranks used below (so gaps in the given ranks do not matter).

Every list metric is computed over the users present on both sides, A and B, and averaged over
them. For one user with lists A (length a) and B (length b), both at most k, and X_d = |A[:d] ∩
B[:d]| the overlap of the first d items:

- overlap@k = X / k, with X = |A ∩ B| (a short list cannot reach 1)
- Jaccard@k = X / |A ∪ B|
- RBO: the extrapolated rank-biased overlap RBO_ext of Webber, Moffat and Zobel (2010, "A
  similarity measure for indefinite rankings", eq. 32), persistence p in (0, 1). With s = min(a,
  b), l = max(a, b):

      RBO_ext = (1 - p) / p * ( sum_{d=1..l} X_d / d * p^d
                                + sum_{d=s+1..l} X_s * (d - s) / (s * d) * p^d )
                + ( (X_l - X_s) / l + X_s / s ) * p^l

  For two lists of the same depth k this is (1 - p) / p * sum_{d=1..k} X_d / d * p^d + X_k / k *
  p^k: 1 for identical lists, 0 for disjoint ones; agreement near the top weighs more (with p =
  0.9 the first 10 ranks carry about 86% of the weight).
- rank differences, over the items both lists hold: the mean |rank in A - rank in B| over all
  such (user, item) pairs, and a Spearman-like correlation per user with at least 2 common items:
  the common items are re-ranked 1..n within each list and rho = 1 - 6 * sum(diff^2) / (n (n^2 -
  1)), averaged over those users.

Over the same users, the item-level figures: distinct items of each side and, given
`catalogue_size`, coverage = distinct items / catalogue_size; "new content discovery" = the items
only B recommends (count, share of B's distinct items, and per item the number of users B gives
it to), and the same for A; given `item_popularity` (item -> interaction count), the mean
popularity of a recommended slot on each side (items missing from it count 0; lower means more
novel, long-tail recommendations).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .errors import EngineError
from .schema import check_k

COLUMNS = ["user_id", "item_id", "rank"]
PER_USER_COLUMNS = ["user_id", "overlap", "jaccard", "rbo"]
TOP_ITEMS = 10


@dataclass
class ComparisonReport:
    """What `compare_lists` found: scalar figures, one row per common user, and the items only
    one side recommends (`item_id, users`, most users first)."""

    summary: dict[str, Any]
    per_user: pd.DataFrame
    only_b: pd.DataFrame
    only_a: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["item_id", "users"]))

    def to_rows(self, *, per_user: bool = False) -> list[dict[str, Any]]:
        """Rows `section, name, value` for a CSV: the summary, then the only-B and only-A items
        (name = item, value = users), then, if asked, each user's overlap, jaccard and rbo."""
        rows = [{"section": "summary", "name": k, "value": v} for k, v in self.summary.items()]
        for section, frame in (("only_b", self.only_b), ("only_a", self.only_a)):
            rows += [
                {"section": section, "name": item, "value": int(users)}
                for item, users in zip(frame["item_id"], frame["users"], strict=True)
            ]
        if per_user:
            for row in self.per_user.itertuples(index=False):
                for metric in PER_USER_COLUMNS[1:]:
                    rows.append(
                        {
                            "section": f"per_user_{metric}",
                            "name": row.user_id,
                            "value": float(getattr(row, metric)),
                        }
                    )
        return rows


@dataclass
class _Side:
    """One side's lists as codes: user and item codes and position (1..k), user-major order."""

    users: np.ndarray
    items: np.ndarray
    ranks: np.ndarray


def _check(frame: Any, name: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise EngineError(f"{name} must be a DataFrame, got {type(frame).__name__}")
    frame = frame.rename(columns={c: str(c).lower() for c in frame.columns})
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise EngineError(f"{name} lacks columns {missing}")
    frame = frame[COLUMNS].dropna()
    if frame.empty:
        raise EngineError(f"{name} has no recommendations")
    try:
        ranks = pd.to_numeric(frame["rank"]).to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise EngineError(f"{name}: rank must be numeric") from None
    return pd.DataFrame(
        {
            "user_id": frame["user_id"].astype(str).to_numpy(),
            "item_id": frame["item_id"].astype(str).to_numpy(),
            "rank": ranks,
        }
    )


def _group_starts(sorted_codes: np.ndarray) -> np.ndarray:
    """For codes sorted into groups, each row's position within its group (from 0)."""
    n = len(sorted_codes)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    new = np.empty(n, dtype=bool)
    new[0] = True
    new[1:] = sorted_codes[1:] != sorted_codes[:-1]
    starts = np.flatnonzero(new)
    sizes = np.diff(np.append(starts, n))
    return np.arange(n) - np.repeat(starts, sizes)


def _side(users: np.ndarray, items: np.ndarray, ranks: np.ndarray, n_items: int, k: int) -> _Side:
    order = np.lexsort((ranks, users))
    users, items = users[order], items[order]
    keys = users.astype(np.int64) * n_items + items
    keep = ~pd.Series(keys).duplicated().to_numpy()  # first = best rank
    users, items = users[keep], items[keep]
    position = _group_starts(users)
    top = position < k
    return _Side(users[top], items[top], position[top] + 1)


def _rbo(X: np.ndarray, a_len: np.ndarray, b_len: np.ndarray, p: float) -> np.ndarray:
    """RBO_ext per row from cumulative overlaps X (users x k, X[:, d-1] = X_d) and list lengths."""
    n, k = X.shape
    d = np.arange(1, k + 1, dtype=float)
    pd_ = p**d
    s = np.minimum(a_len, b_len).astype(float)[:, None]
    lng = np.maximum(a_len, b_len).astype(float)[:, None]
    rows = np.arange(n)
    x_s = X[rows, s[:, 0].astype(int) - 1].astype(float)
    x_l = X[rows, lng[:, 0].astype(int) - 1].astype(float)
    term1 = np.where(d <= lng, X / d * pd_, 0.0).sum(axis=1)
    tail = np.where((d > s) & (d <= lng), (d - s) / (s * d) * pd_, 0.0).sum(axis=1)
    term2 = x_s * tail
    s, lng = s[:, 0], lng[:, 0]
    return (1 - p) / p * (term1 + term2) + ((x_l - x_s) / lng + x_s / s) * p**lng


def _only(
    mine: np.ndarray, theirs: np.ndarray, item_names: pd.Index, distinct: int
) -> tuple[pd.DataFrame, int, float | None]:
    """Items of `mine` (item codes of rows) absent from `theirs`, with their user counts."""
    only = np.setdiff1d(np.unique(mine), np.unique(theirs), assume_unique=True)
    rows = mine[np.isin(mine, only)]
    codes, counts = np.unique(rows, return_counts=True)
    frame = pd.DataFrame({"item_id": item_names[codes].to_numpy(), "users": counts})
    frame = frame.sort_values(["users", "item_id"], ascending=[False, True], kind="stable")
    share = len(only) / distinct if distinct else None
    return frame.reset_index(drop=True), int(len(only)), share


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if len(values) else None


def compare_lists(
    a: pd.DataFrame,
    b: pd.DataFrame,
    *,
    k: int = 10,
    catalogue_size: int | None = None,
    rbo_p: float = 0.9,
    item_popularity: pd.Series | None = None,
) -> ComparisonReport:
    """Compare list set `a` (e.g. in-house) with `b` (e.g. Personalize); see the module doc for
    every figure. Raises `EngineError` on empty or malformed input, a bad k, p or catalogue
    size, or when no user has lists on both sides."""
    k = check_k(k)
    if not 0 < rbo_p < 1:
        raise EngineError(f"rbo_p must be between 0 and 1 (exclusive), got {rbo_p}")
    if catalogue_size is not None and catalogue_size <= 0:
        raise EngineError(f"catalogue_size must be positive, got {catalogue_size}")
    a, b = _check(a, "a"), _check(b, "b")

    user_codes, user_names = pd.factorize(pd.concat([a["user_id"], b["user_id"]]))
    item_codes, item_names = pd.factorize(pd.concat([a["item_id"], b["item_id"]]))
    n_items, n_a = len(item_names), len(a)
    side_a = _side(user_codes[:n_a], item_codes[:n_a], a["rank"].to_numpy(), n_items, k)
    side_b = _side(user_codes[n_a:], item_codes[n_a:], b["rank"].to_numpy(), n_items, k)

    users_a, users_b = np.unique(side_a.users), np.unique(side_b.users)
    both = np.intersect1d(users_a, users_b, assume_unique=True)
    if len(both) == 0:
        raise EngineError("no user has recommendations on both sides")
    index = np.full(len(user_names), -1, dtype=np.int64)
    index[both] = np.arange(len(both))
    n = len(both)
    # Keep only the common users' rows from here on.
    sides = []
    for side in (side_a, side_b):
        keep = index[side.users] >= 0
        sides.append(_Side(index[side.users[keep]], side.items[keep], side.ranks[keep]))
    side_a, side_b = sides
    a_len = np.bincount(side_a.users, minlength=n)
    b_len = np.bincount(side_b.users, minlength=n)

    # Common (user, item) pairs: keys are unique within each side after de-duplication.
    key_a = side_a.users * n_items + side_a.items
    key_b = side_b.users * n_items + side_b.items
    _, in_a, in_b = np.intersect1d(key_a, key_b, assume_unique=True, return_indices=True)
    common_user = side_a.users[in_a]
    rank_a, rank_b = side_a.ranks[in_a], side_b.ranks[in_b]
    common = np.bincount(common_user, minlength=n)

    overlap = common / k
    jaccard = common / (a_len + b_len - common)
    depth = np.maximum(rank_a, rank_b) - 1  # a common item counts in X_d from this depth on
    X = np.bincount(common_user * k + depth, minlength=n * k).reshape(n, k).cumsum(axis=1)
    rbo = _rbo(X, a_len, b_len, rbo_p)

    # Spearman-like rho over each user's common items, re-ranked 1..n within each list.
    order_a = np.lexsort((rank_a, common_user))
    within_a = np.empty(len(order_a), dtype=np.int64)
    within_a[order_a] = _group_starts(common_user[order_a])
    order_b = np.lexsort((rank_b, common_user))
    within_b = np.empty(len(order_b), dtype=np.int64)
    within_b[order_b] = _group_starts(common_user[order_b])
    sq = np.bincount(common_user, weights=(within_a - within_b) ** 2.0, minlength=n)
    ranked = common >= 2
    c = common[ranked].astype(float)
    rho = 1 - 6 * sq[ranked] / (c * (c * c - 1))

    distinct_a = int(len(np.unique(side_a.items)))
    distinct_b = int(len(np.unique(side_b.items)))
    only_b, only_b_items, only_b_share = _only(side_b.items, side_a.items, item_names, distinct_b)
    only_a, only_a_items, only_a_share = _only(side_a.items, side_b.items, item_names, distinct_a)

    summary: dict[str, Any] = {
        "k": k,
        "rbo_p": rbo_p,
        "users_a": int(len(users_a)),
        "users_b": int(len(users_b)),
        "users_both": n,
        "users_only_a": int(len(users_a) - n),
        "users_only_b": int(len(users_b) - n),
        "overlap_at_k": float(overlap.mean()),
        "jaccard_at_k": float(jaccard.mean()),
        "rbo": float(rbo.mean()),
        "common_pairs": int(len(in_a)),
        "mean_abs_rank_diff": _mean(np.abs(rank_a - rank_b).astype(float)),
        "rank_correlation": _mean(rho),
        "rank_correlation_users": int(ranked.sum()),
        "distinct_items_a": distinct_a,
        "distinct_items_b": distinct_b,
        "coverage_a": distinct_a / catalogue_size if catalogue_size else None,
        "coverage_b": distinct_b / catalogue_size if catalogue_size else None,
        "only_b_items": only_b_items,
        "only_b_share": only_b_share,
        "only_b_top": only_b["item_id"].head(TOP_ITEMS).tolist(),
        "only_a_items": only_a_items,
        "only_a_share": only_a_share,
        "mean_popularity_a": None,
        "mean_popularity_b": None,
    }
    if item_popularity is not None:
        popularity = pd.Series(item_popularity)
        popularity.index = popularity.index.astype(str)
        counts = popularity.groupby(level=0).sum().reindex(item_names).fillna(0).to_numpy(float)
        summary["mean_popularity_a"] = _mean(counts[side_a.items])
        summary["mean_popularity_b"] = _mean(counts[side_b.items])

    per_user = pd.DataFrame(
        {
            "user_id": user_names[both].to_numpy(),
            "overlap": overlap,
            "jaccard": jaccard,
            "rbo": rbo,
        },
        columns=PER_USER_COLUMNS,
    )
    return ComparisonReport(summary=summary, per_user=per_user, only_b=only_b, only_a=only_a)
