"""Offline evaluation: splits, ranking metrics, `evaluate` and a small hyperparameter search.

Metric definitions follow the Microsoft Recommenders MovieLens table (binary relevance), averaged
over the users that have at least one test item (a user without recommendations scores 0):

- Precision@k = hits in the top k / k
- Recall@k = hits in the top k / number of the user's test items
- nDCG@k = DCG / ideal DCG, DCG = sum over hits of 1 / log2(rank + 1), the ideal list having
  min(k, number of test items) hits
- MAP (at k) = sum over hits in the top k of (hits so far / rank), divided by the number of the
  user's test items -- *not* by min(k, n) as some newer libraries do; this is the definition the
  published table used.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import EngineError
from .schema import check_k, interactions_frame


# ----------------------------------------------------------------------------- splits
def stratified_split(
    df: pd.DataFrame, test_size: float = 0.25, seed: int = 42, user_col: str = "user_id"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per user: shuffle the rows, first round((1 - test_size) * n) to train, the rest to test."""
    _check_fraction(test_size)
    rng = np.random.default_rng(seed)
    users = df[user_col].to_numpy()
    order = np.lexsort((rng.random(len(df)), pd.factorize(users)[0]))
    return _split_by_position(df, order, users, test_size)


def temporal_split(
    df: pd.DataFrame,
    test_size: float = 0.25,
    *,
    by_user: bool = True,
    cutoff=None,
    user_col: str = "user_id",
    time_col: str = "timestamp",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Time-based split.

    by_user=True: each user's latest `test_size` fraction of events goes to test.
    by_user=False: one global cutoff (given, else the (1 - test_size) time quantile); events at
    or after it go to test.
    """
    _check_fraction(test_size)
    times = df[time_col]
    if not pd.api.types.is_numeric_dtype(times):
        times = pd.to_datetime(times, utc=True)
    if not by_user:
        if cutoff is None:
            cutoff = times.quantile(1 - test_size)
        elif not pd.api.types.is_numeric_dtype(times):
            cutoff = (
                pd.Timestamp(cutoff, tz="UTC")
                if pd.Timestamp(cutoff).tz is None
                else pd.Timestamp(cutoff)
            )
        test = (times >= cutoff).to_numpy()
        return df[~test], df[test]
    users = df[user_col].to_numpy()
    rank_time = times.rank(method="first").to_numpy()
    order = np.lexsort((rank_time, pd.factorize(users)[0]))
    return _split_by_position(df, order, users, test_size)


def _check_fraction(test_size: float) -> None:
    if not 0 < test_size < 1:
        raise EngineError(f"test_size must be between 0 and 1, got {test_size}")


def _split_by_position(
    df: pd.DataFrame, order: np.ndarray, users: np.ndarray, test_size: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows in `order` (grouped by user): the leading share of each user's rows is train."""
    codes = pd.factorize(users[order])[0]
    counts = np.bincount(codes)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = np.arange(len(order)) - starts[codes]
    # Python/NumPy round half to even, as in Microsoft Recommenders' split.
    n_train = np.round(counts * (1 - test_size)).astype(int)
    is_test = np.zeros(len(df), dtype=bool)
    is_test[order] = position >= n_train[codes]
    return df[~is_test], df[is_test]


# ----------------------------------------------------------------------------- metrics
def _hits(recs: pd.DataFrame, test: pd.DataFrame, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Hit matrix (users x k, rank order) and test counts, for users with test items."""
    test = test[["user_id", "item_id"]].drop_duplicates()
    n_rel = test.groupby("user_id").size()
    users = n_rel.index
    top = recs[recs["rank"] <= k]
    u = users.get_indexer(top["user_id"])
    top = top[u >= 0]
    u = u[u >= 0]
    keys = pd.MultiIndex.from_frame(test[["user_id", "item_id"]])
    hit = keys.get_indexer(pd.MultiIndex.from_frame(top[["user_id", "item_id"]])) >= 0
    H = np.zeros((len(users), k))
    H[u, top["rank"].to_numpy(dtype=int) - 1] = hit
    return H, n_rel.to_numpy(dtype=float)


def precision_at_k(recs: pd.DataFrame, test: pd.DataFrame, k: int = 10) -> float:
    H, _ = _hits(recs, test, k)
    return float((H.sum(axis=1) / k).mean())


def recall_at_k(recs: pd.DataFrame, test: pd.DataFrame, k: int = 10) -> float:
    H, n_rel = _hits(recs, test, k)
    return float((H.sum(axis=1) / n_rel).mean())


def ndcg_at_k(recs: pd.DataFrame, test: pd.DataFrame, k: int = 10) -> float:
    H, n_rel = _hits(recs, test, k)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discount)[np.minimum(n_rel, k).astype(int) - 1]
    return float(((H @ discount) / ideal).mean())


def map_at_k(recs: pd.DataFrame, test: pd.DataFrame, k: int = 10) -> float:
    H, n_rel = _hits(recs, test, k)
    precision_at_hits = H * np.cumsum(H, axis=1) / np.arange(1, k + 1)
    return float((precision_at_hits.sum(axis=1) / n_rel).mean())


def catalogue_coverage(recs: pd.DataFrame, n_items: int) -> float:
    """Share of the catalogue that appears in at least one list."""
    return recs["item_id"].nunique() / n_items if n_items else 0.0


def novelty(recs: pd.DataFrame, train: pd.DataFrame) -> float:
    """Mean self-information -log2(share of train users who had the item) of recommended items.

    Items without train interactions are left out (their popularity is unknown).
    """
    n_users = train["user_id"].nunique()
    share = train.drop_duplicates(["user_id", "item_id"]).groupby("item_id").size() / n_users
    p = share.reindex(recs["item_id"]).to_numpy(dtype=float)
    p = p[~np.isnan(p)]
    return float((-np.log2(p)).mean()) if len(p) else 0.0


def ranking_metrics(recs: pd.DataFrame, test: pd.DataFrame, k: int = 10) -> dict[str, float]:
    """MAP, nDCG@k, Precision@k, Recall@k in one pass."""
    H, n_rel = _hits(recs, test, k)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discount)[np.minimum(n_rel, k).astype(int) - 1]
    precision_at_hits = H * np.cumsum(H, axis=1) / np.arange(1, k + 1)
    return {
        "map": float((precision_at_hits.sum(axis=1) / n_rel).mean()),
        "ndcg_at_k": float(((H @ discount) / ideal).mean()),
        "precision_at_k": float((H.sum(axis=1) / k).mean()),
        "recall_at_k": float((H.sum(axis=1) / n_rel).mean()),
    }


def _lower(df: pd.DataFrame) -> pd.DataFrame:
    return df.rename(columns={c: str(c).lower() for c in df.columns})


def evaluate(
    model,
    train: pd.DataFrame,
    test: pd.DataFrame,
    k: int = 10,
    *,
    items: pd.DataFrame | None = None,
    users: pd.DataFrame | None = None,
    fit: bool = True,
) -> dict[str, float]:
    """Fit (unless `fit=False`) on train, recommend top-k for the test users (train items
    excluded) and return ranking metrics, coverage, novelty and timings in seconds."""
    k = check_k(k)
    train, test = _lower(train), _lower(test)
    if test.empty:
        raise EngineError("test is empty")
    start = time.perf_counter()
    if fit:
        model.fit(train, items=items, users=users)
    fitted = time.perf_counter()
    recs = model.recommend(pd.unique(test["user_id"]), k=k, exclude_seen=True)
    done = time.perf_counter()
    result = ranking_metrics(recs, test, k)
    n_items = len(model.item_map_) if hasattr(model, "item_map_") else train["item_id"].nunique()
    result.update(
        coverage=catalogue_coverage(recs, n_items),
        novelty=novelty(recs, train),
        fit_seconds=fitted - start,
        recommend_seconds=done - fitted,
        n_users=int(test["user_id"].nunique()),
    )
    return result


# ----------------------------------------------------------------------------- search
def search(
    train: pd.DataFrame,
    param_grid: Mapping[str, Sequence],
    *,
    k: int = 10,
    metric: str = "ndcg_at_k",
    split: str = "temporal",
    test_size: float = 0.25,
    n_iter: int | None = None,
    seed: int = 0,
    base_params: Mapping | None = None,
    items: pd.DataFrame | None = None,
    users: pd.DataFrame | None = None,
    model_factory: Callable | None = None,
) -> tuple[dict, pd.DataFrame]:
    """Grid (or, with `n_iter`, random) search on a validation split carved from `train`.

    `split` is "temporal" (each user's latest events validate) or "stratified" (random per user,
    as in the MovieLens protocol). Returns the best params (merged into `base_params`) and the
    table of all tried combinations, best first.
    """
    if model_factory is None:
        from .hybrid import HybridRecommender

        model_factory = HybridRecommender
    if not param_grid:
        raise EngineError("param_grid is empty")
    train = _lower(train)
    interactions_frame(train)  # validate early with the engine's own messages
    if split == "temporal":
        fit_part, valid = temporal_split(train, test_size)
    elif split == "stratified":
        fit_part, valid = stratified_split(train, test_size, seed=seed)
    else:
        raise EngineError(f"split must be 'temporal' or 'stratified', got {split!r}")
    names = list(param_grid)
    combos = list(itertools.product(*(param_grid[n] for n in names)))
    if n_iter is not None and n_iter < len(combos):
        rng = np.random.default_rng(seed)
        combos = [combos[i] for i in sorted(rng.choice(len(combos), n_iter, replace=False))]
    rows = []
    for values in combos:
        params = {**(base_params or {}), **dict(zip(names, values, strict=True))}
        result = evaluate(model_factory(**params), fit_part, valid, k, items=items, users=users)
        rows.append({**dict(zip(names, values, strict=True)), **result})
    table = pd.DataFrame(rows).sort_values(metric, ascending=False, kind="stable")
    best = table.iloc[0]
    best_params = {**(base_params or {}), **{n: _plain(best[n]) for n in names}}
    return best_params, table.reset_index(drop=True)


def _plain(value):
    """NumPy scalars from the table back to plain Python values."""
    return value.item() if isinstance(value, np.generic) else value


# ----------------------------------------------------------------------------- comparison
def compare_with_popularity(
    interactions: pd.DataFrame,
    *,
    items: pd.DataFrame | None = None,
    users: pd.DataFrame | None = None,
    split: str = "stratified",
    test_size: float = 0.25,
    k: int = 10,
    seeds: Sequence[int] = (42,),
    params: Mapping | None = None,
    tune: bool = False,
    param_grid: Mapping[str, Sequence] | None = None,
) -> dict:
    """The hybrid beside the popularity baseline on the same splits, averaged over seeds.

    `split` is "stratified" (per user, random; the MovieLens protocol; one split per seed) or
    "temporal" (each user's latest events; the same split whatever the seed). With `tune`, the
    hybrid's parameters are searched per seed on a validation split of the train part only,
    and the chosen ones are reported.
    """
    from .hybrid import HybridRecommender
    from .presets import POPULARITY_PARAMS, SEARCH_GRID

    interactions = _lower(interactions)
    runs = []
    for seed in seeds:
        if split == "stratified":
            train, test = stratified_split(interactions, test_size, seed=seed)
        elif split == "temporal":
            train, test = temporal_split(interactions, test_size)
        else:
            raise EngineError(f"split must be 'stratified' or 'temporal', got {split!r}")
        chosen = {"random_state": seed, **(params or {})}
        if tune:
            chosen, _ = search(
                train,
                param_grid or SEARCH_GRID,
                k=k,
                split=split,
                seed=seed,
                base_params=chosen,
                items=items,
                users=users,
            )
        runs.append(
            {
                "seed": seed,
                "params": chosen,
                "hybrid": evaluate(
                    HybridRecommender(**chosen), train, test, k, items=items, users=users
                ),
                "popularity": evaluate(
                    HybridRecommender(**POPULARITY_PARAMS), train, test, k, items=items, users=users
                ),
            }
        )
    summary = {
        model: {name: float(np.mean([run[model][name] for run in runs])) for name in runs[0][model]}
        for model in ("hybrid", "popularity")
    }
    return {
        "split": split,
        "test_size": test_size,
        "k": k,
        "seeds": list(seeds),
        "summary": summary,
        "runs": runs,
    }
