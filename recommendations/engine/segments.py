"""Audience segments: behaviour features, rule-based members and learned (k-means) segments.

Pure pandas/scikit-learn, no Django. Three steps:

- `behaviour_features(interactions, items, now)`: one row per user with recency, frequency,
  conversions and category affinity (the share of the user's events per top-level category).
- `rule_segment_members(features, attributes, conditions)`: the users meeting every `Condition`
  on those features and on user attributes (country, plan, ...).
- `learn_segments(features)`: k-means on the standardized features, k chosen by the highest
  silhouette among the k whose smallest segment is big enough not to be noise; each segment gets
  a profile and a readable name ("Active · Cooking & Gardening"). `LearnedSegments.predict`
  assigns new users to the learned segments.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from .conditions import Condition, conditions_mask
from .errors import EngineError

DAY_SECONDS = 86_400
CONVERSION_TYPES = ("purchase", "complete", "signup")
AFFINITY_PREFIX = "affinity:"
OTHER_CATEGORY = "other"
ACTIVITY_COLUMNS = (
    "recency_days",
    "frequency_30d",
    "frequency_90d",
    "events_total",
    "active_days",
    "conversions",
)
COUNT_COLUMNS = ACTIVITY_COLUMNS[1:]

# Learning.
NO_EVENT_RECENCY_DAYS = 365.0  # users without events count as at least this long inactive
KMEANS_N_INIT = 4
# One OpenMP thread: Celery's prefork workers already fill the cores, and k-means threads that
# wait for a busy core spin (measured: 2 s instead of 10 ms for 1,500 users on a loaded 2-core box).
KMEANS_THREADS = 1
SILHOUETTE_CHUNK = 500  # rows of the sample's distance matrix held at once (500 x 10k floats)
MINIBATCH_ABOVE = 200_000  # users; above this MiniBatchKMeans replaces KMeans
MINIBATCH_N_INIT = 3
MINIBATCH_BATCH_SIZE = 4_096

# Naming (on a segment's median recency among its users with events, and mean affinities).
ACTIVE_MAX_DAYS = 14.0  # "Active": median recency up to two weeks
COOLING_MAX_DAYS = 60.0  # "Cooling": up to two months; beyond, "Lapsed"
NO_EVENTS_MAJORITY = 0.5  # more than half the segment without events: "No activity"
NAME_MIN_SHARE = 0.15  # a category enters the name when it holds >= 15% of the events
NAME_MAX_CATEGORIES = 2
PROFILE_TOP_CATEGORIES = 3


# --------------------------------------------------------------------------------------------
# Features


def behaviour_features(
    interactions: pd.DataFrame,
    items: pd.DataFrame,
    now: pd.Timestamp | str,
    *,
    user_ids: Iterable[Any] | None = None,
    conversion_types: Collection[str] = CONVERSION_TYPES,
    n_categories: int = 20,
) -> pd.DataFrame:
    """One row per user (index `user_id`) describing behaviour up to `now`.

    Columns: `recency_days` (days since the last event), `frequency_30d`, `frequency_90d`
    (events in the last 30/90 days), `events_total`, `active_days` (distinct UTC days with an
    event), `conversions` (events of `conversion_types`) and `affinity:<category>`: the share of
    the user's events on items whose FIRST category is that one, for the `n_categories` most
    common categories (by events), the rest (and unknown or uncategorised items) pooled in
    `affinity:other`. Affinities of a user with events sum to 1.

    Events after `now` are ignored. Rows are the users with events (sorted), or exactly
    `user_ids` when given: a listed user without events has zero counts and affinities and a
    missing (NaN) recency, which `learn_segments` treats as very inactive and which no recency
    condition matches.
    """
    _require_columns(
        interactions, ("user_id", "item_id", "timestamp", "event_type"), "interactions"
    )
    _require_columns(items, ("item_id", "categories"), "items")
    if n_categories < 1:
        raise EngineError(f"n_categories must be at least 1, not {n_categories}")
    now_s = _unix_seconds(pd.Series([pd.Timestamp(now)]))[0]
    seconds = _unix_seconds(interactions["timestamp"])
    past = seconds <= now_s
    events = interactions.loc[past, ["user_id", "item_id", "event_type"]]
    seconds = seconds[past]
    age_days = (now_s - seconds) / DAY_SECONDS

    codes, uniques = pd.factorize(events["user_id"], sort=True)
    n_users = len(uniques)
    total = np.bincount(codes, minlength=n_users)
    last_age = np.full(n_users, np.nan)
    if len(codes):
        last_age = pd.Series(age_days).groupby(codes).min().reindex(range(n_users)).to_numpy()
    day = np.floor(seconds / DAY_SECONDS).astype(np.int64)
    first_day = day.min(initial=0)
    span = day.max(initial=0) - first_day + 1
    user_days = np.unique(codes.astype(np.int64) * span + (day - first_day))
    active_days = np.bincount(user_days // span, minlength=n_users)
    converted = events["event_type"].astype(str).isin(list(conversion_types)).to_numpy()

    table = pd.DataFrame(
        {
            "recency_days": last_age,
            "frequency_30d": np.bincount(codes, weights=age_days <= 30, minlength=n_users),
            "frequency_90d": np.bincount(codes, weights=age_days <= 90, minlength=n_users),
            "events_total": total,
            "active_days": active_days,
            "conversions": np.bincount(codes, weights=converted, minlength=n_users),
        },
        index=pd.Index(uniques, name="user_id"),
    )
    for column in COUNT_COLUMNS:
        table[column] = table[column].astype(np.int64)
    affinity = _affinity(codes, n_users, events["item_id"], items, n_categories)
    table = pd.concat(
        [table, pd.DataFrame(affinity[1], index=table.index, columns=affinity[0])], axis=1
    )
    if user_ids is not None:
        table = _reindex_users(table, pd.Index(list(user_ids), name="user_id"))
    return table


def _affinity(
    codes: np.ndarray, n_users: int, item_ids: pd.Series, items: pd.DataFrame, n_categories: int
) -> tuple[list[str], np.ndarray]:
    """Column names and the users x categories matrix of event shares (first category)."""
    first = items["categories"].map(_first_category).to_numpy(dtype=object)
    position = pd.Index(items["item_id"]).get_indexer(item_ids)
    category = np.where(position >= 0, first[position], None)
    cat_codes, cat_names = pd.factorize(pd.Series(category, dtype=object))
    counts = np.bincount(cat_codes[cat_codes >= 0], minlength=len(cat_names))
    order = sorted(range(len(cat_names)), key=lambda c: (-counts[c], str(cat_names[c])))
    kept = [c for c in order if str(cat_names[c]) != OTHER_CATEGORY][:n_categories]
    column_of = np.full(len(cat_names) + 1, len(kept))  # everything else (and -1) -> other
    column_of[kept] = np.arange(len(kept))
    columns = column_of[cat_codes]  # cat_codes -1 reads the last entry: other
    matrix = np.zeros((n_users, len(kept) + 1))
    np.add.at(matrix, (codes, columns), 1.0)
    totals = matrix.sum(axis=1, keepdims=True)
    matrix = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    names = [f"{AFFINITY_PREFIX}{cat_names[c]}" for c in kept] + [AFFINITY_PREFIX + OTHER_CATEGORY]
    return names, matrix


def _first_category(value: Any) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, list | tuple | np.ndarray) and len(value):
        return str(value[0])
    return None


def _reindex_users(table: pd.DataFrame, users: pd.Index) -> pd.DataFrame:
    """`table` on exactly `users`; users missing from it get zero counts and affinities."""
    if users.has_duplicates:
        raise EngineError("user_ids has duplicates")
    table = table.reindex(users)
    filled = [c for c in table.columns if c in COUNT_COLUMNS or c.startswith(AFFINITY_PREFIX)]
    table[filled] = table[filled].fillna(0)
    for column in COUNT_COLUMNS:
        if column in table:
            table[column] = table[column].astype(np.int64)
    return table


# --------------------------------------------------------------------------------------------
# Rule-based segments


def rule_segment_members(
    features: pd.DataFrame,
    attributes: pd.DataFrame | None,
    conditions: Sequence[Condition],
) -> pd.Index:
    """The user ids meeting every condition, on feature and attribute columns alike.

    `features` comes from `behaviour_features`; `attributes` (age_group, country, plan, ...) is
    indexed by user_id or has a `user_id` column. Users with attributes but no feature row count
    as users without events (zero counts and affinities, no recency), so `country in [...]`
    finds them and `recency_days lt 7` does not. No conditions: every user.
    """
    features = _by_user(features, "features")
    table = features
    if attributes is not None:
        attributes = _by_user(attributes, "attributes")
        clash = sorted(set(features.columns) & set(attributes.columns))
        if clash:
            raise EngineError(f"features and attributes both have {', '.join(clash)}")
        users = features.index.union(attributes.index, sort=False)
        table = _reindex_users(features, users).join(attributes)
    return pd.Index(table.index[conditions_mask(table, conditions)], name="user_id")


def _by_user(table: pd.DataFrame, name: str) -> pd.DataFrame:
    if "user_id" in table.columns:
        table = table.set_index("user_id")
    if table.index.has_duplicates:
        raise EngineError(f"{name}: user ids must be unique")
    return table.rename_axis("user_id")


# --------------------------------------------------------------------------------------------
# Learned segments


@dataclass
class LearnedSegments:
    """The outcome of `learn_segments`: who is where, why this k, and what each segment is."""

    labels: pd.Series  # user_id -> segment number (0 = largest)
    k: int
    scores: pd.DataFrame  # k, silhouette, smallest, qualifies (one row per k tried)
    criterion: str  # the rule, and why this k won
    profiles: pd.DataFrame  # per segment: name, size, share, means, top categories
    columns: list[str]  # the feature columns used, in order
    recency_fill: float  # recency given to users without events
    affinity_factor: float  # the common factor applied to the affinity shares
    scaler: StandardScaler | None = None  # fitted on log1p(activity columns)
    model: KMeans | MiniBatchKMeans | None = None  # None when k == 1
    segment_of_cluster: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=int))

    def predict(self, features: pd.DataFrame) -> pd.Series:
        """Each user's learned segment, for users with the same kind of features.

        Affinity columns unknown to the fit are pooled into `affinity:other`; missing ones
        count as zero; activity columns must all be present.
        """
        features = _by_user(features, "features")
        if self.model is None:
            return pd.Series(0, index=features.index, name="segment", dtype=np.int64)
        matrix = _design(features, self.columns, self.recency_fill, self.scaler, pool=True)[0]
        matrix[:, len(_activity(self.columns)) :] *= self.affinity_factor
        clusters = self.model.predict(matrix)
        return pd.Series(self.segment_of_cluster[clusters], index=features.index, name="segment")


def learn_segments(
    features: pd.DataFrame,
    *,
    k_range: Iterable[int] = range(2, 9),
    min_size_share: float = 0.02,
    min_size: int = 10,
    random_state: int = 0,
    sample_size: int = 10_000,
    affinity_weight: float = 1.0,
) -> LearnedSegments:
    """k-means segments of `features` (from `behaviour_features`), k chosen by silhouette.

    Scaling: the activity columns (recency, frequencies, conversions) are heavy-tailed counts, so
    log1p, then standardized. The affinity shares stay proportions, all multiplied by one
    common factor: standardizing each share would make a category with 1% of the events as loud
    as one with 40%, while a common factor keeps the distances between taste profiles. The
    factor gives both blocks' main direction the same variance (multiple factor analysis
    weighting): the activity columns are strongly collinear (one "how active" direction holds
    most of their variance) while taste spreads over as many directions as there are
    categories, so balancing total variance instead would let activity drown taste.
    `affinity_weight` scales that balance (above 1: taste-led segments, below: activity-led).
    Users without events get a recency of max(365 days, the longest observed).

    Criterion: for each k, a segment smaller than max(min_size, min_size_share x users) is noise;
    among the k without such a segment, the highest silhouette (on a random sample of at most
    `sample_size` users, the same for every k) wins, ties to the smaller k. If none qualifies,
    the largest smaller k that does; failing that, one segment. Deterministic for a random_state.
    """
    features = _by_user(features, "features")
    ks = sorted(set(int(k) for k in k_range))
    if not ks or ks[0] < 2:
        raise EngineError(f"k_range must hold values of at least 2, not {ks}")
    if not 0 <= min_size_share < 1 or min_size < 1 or sample_size < 3:
        raise EngineError("need 0 <= min_size_share < 1, min_size >= 1 and sample_size >= 3")
    n = len(features)
    smallest_allowed = max(int(min_size), math.ceil(min_size_share * n))
    if n < smallest_allowed:
        raise EngineError(
            f"{n} users cannot make a segment of at least {smallest_allowed} users "
            f"(min_size={min_size}); collect more users or lower min_size"
        )
    columns = _activity(list(features.columns)) + _affinities(list(features.columns))
    if not _activity(columns):
        raise EngineError(f"features need activity columns ({', '.join(ACTIVITY_COLUMNS)})")
    matrix, recency_fill, scaler = _design(features, columns, None, None, pool=False)
    factor = _affinity_factor(matrix, len(_activity(columns)), affinity_weight)
    matrix[:, len(_activity(columns)) :] *= factor
    base = dict(columns=columns, recency_fill=recency_fill, affinity_factor=factor, scaler=scaler)

    distinct = len(np.unique(matrix.round(9), axis=0))
    if distinct == 1:
        note = f"All {n:,} users have identical features: nothing to split, one segment."
        return _one_segment(features, pd.DataFrame(columns=list(SCORE_COLUMNS)), note, base)

    rng = np.random.default_rng(random_state)
    sample = np.sort(rng.choice(n, size=min(sample_size, n), replace=False))
    fits: dict[int, KMeans | MiniBatchKMeans] = {}
    rows = _score_ks(matrix, ks, sample, smallest_allowed, distinct, random_state, fits)
    scores = pd.DataFrame(rows, columns=list(SCORE_COLUMNS))
    chosen, fallback = _choose(scores), False
    if chosen is None:
        for k in range(ks[0] - 1, 1, -1):
            rows += _score_ks(matrix, [k], sample, smallest_allowed, distinct, random_state, fits)
            if rows[-1][3]:
                chosen, fallback = k, True
                break
        scores = pd.DataFrame(rows, columns=list(SCORE_COLUMNS)).sort_values("k")
        scores = scores.reset_index(drop=True)
    if chosen is None:
        note = (
            f"No k from 2 to {ks[-1]} gave segments of at least {smallest_allowed:,} users each "
            f"(max({min_size}, {min_size_share:.0%} of {n:,})), so everyone is in one segment."
        )
        return _one_segment(features, scores, note, base)

    model = fits[chosen]
    clusters = model.labels_
    sizes = np.bincount(clusters, minlength=chosen)
    segment_of_cluster = np.empty(chosen, dtype=np.int64)
    segment_of_cluster[np.argsort(-sizes, kind="stable")] = np.arange(chosen)
    labels = pd.Series(segment_of_cluster[clusters], index=features.index, name="segment")
    criterion = _criterion(
        scores, chosen, fallback, ks, smallest_allowed, min_size, min_size_share, n, len(sample)
    )
    return LearnedSegments(
        labels=labels,
        k=chosen,
        scores=scores,
        criterion=criterion,
        profiles=segment_profiles(features, labels),
        model=model,
        segment_of_cluster=segment_of_cluster,
        **base,
    )


SCORE_COLUMNS = ("k", "silhouette", "smallest", "qualifies")


def _score_ks(
    matrix: np.ndarray,
    ks: list[int],
    sample: np.ndarray,
    smallest_allowed: int,
    distinct: int,
    random_state: int,
    fits: dict[int, KMeans | MiniBatchKMeans],
) -> list[tuple[int, float, int, bool]]:
    """Fit each k (into `fits`): rows of (k, silhouette on the sample, smallest, qualifies)."""
    fitted = [k for k in ks if k <= distinct]  # more clusters than distinct points: no fit
    for k in fitted:
        fits[k] = _fit(matrix, k, random_state)
    scores = _silhouettes(matrix[sample], [fits[k].labels_[sample] for k in fitted])
    silhouettes = dict(zip(fitted, scores, strict=True))
    rows = []
    for k in ks:
        if k not in silhouettes:
            rows.append((k, float("nan"), 0, False))
            continue
        smallest = int(np.bincount(fits[k].labels_, minlength=k).min())
        silhouette = silhouettes[k]
        rows.append(
            (k, silhouette, smallest, smallest >= smallest_allowed and not math.isnan(silhouette))
        )
    return rows


def _fit(matrix: np.ndarray, k: int, random_state: int) -> KMeans | MiniBatchKMeans:
    if len(matrix) > MINIBATCH_ABOVE:
        model: KMeans | MiniBatchKMeans = MiniBatchKMeans(
            n_clusters=k,
            n_init=MINIBATCH_N_INIT,
            batch_size=MINIBATCH_BATCH_SIZE,
            random_state=random_state,
        )
    else:
        model = KMeans(n_clusters=k, n_init=KMEANS_N_INIT, random_state=random_state)
    with warnings.catch_warnings(), threadpool_limits(KMEANS_THREADS, user_api="openmp"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(matrix)


def _silhouettes(points: np.ndarray, labelings: list[np.ndarray]) -> list[float]:
    """The mean silhouette of each labeling of the same points (as sklearn's silhouette_score),
    computing the pairwise distances once for all labelings, a chunk of rows at a time.
    NaN for a labeling with fewer than two clusters or no cluster of two points or more."""
    n = len(points)
    if not labelings:
        return []
    codes = [pd.factorize(labels, sort=True)[0] for labels in labelings]
    widths = [int(c.max()) + 1 for c in codes]
    offsets = np.concatenate([[0], np.cumsum(widths)])
    members = np.zeros((n, offsets[-1]))
    for c, offset in zip(codes, offsets, strict=False):
        members[np.arange(n), offset + c] = 1.0
    squares = np.einsum("ij,ij->i", points, points)
    sums = np.empty_like(members)  # per point and cluster: the sum of distances to members
    for start in range(0, n, SILHOUETTE_CHUNK):
        block = points[start : start + SILHOUETTE_CHUNK]
        d2 = squares[start : start + len(block), None] + squares[None, :] - 2 * block @ points.T
        distances = np.sqrt(np.maximum(d2, 0))
        distances[np.arange(len(block)), np.arange(start, start + len(block))] = 0.0
        sums[start : start + len(block)] = distances @ members
    result = []
    rows = np.arange(n)
    for c, width, offset in zip(codes, widths, offsets, strict=False):
        sizes = np.bincount(c, minlength=width).astype(float)
        if width < 2 or width >= n:
            result.append(float("nan"))
            continue
        own_size = sizes[c]
        block = sums[:, offset : offset + width]
        inside = block[rows, c] / np.maximum(own_size - 1, 1)
        means = block / sizes
        means[rows, c] = np.inf
        nearest = means.min(axis=1)
        widest = np.maximum(inside, nearest)
        values = np.divide(nearest - inside, widest, out=np.zeros(n), where=widest > 0)
        values[own_size == 1] = 0.0
        result.append(float(values.mean()))
    return result


def _choose(scores: pd.DataFrame) -> int | None:
    """The qualifying k with the highest silhouette (ties: the smaller k), or None."""
    ok = scores[scores["qualifies"]].sort_values(["silhouette", "k"], ascending=[False, True])
    return None if ok.empty else int(ok["k"].iloc[0])


def _criterion(
    scores: pd.DataFrame,
    k: int,
    fallback: bool,
    ks: list[int],
    smallest_allowed: int,
    min_size: int,
    min_size_share: float,
    n: int,
    n_sample: int,
) -> str:
    """The rule in one sentence, and why k won."""
    score = float(scores.loc[scores["k"] == k, "silhouette"].iloc[0])
    span = f"k = {ks[0]}..{ks[-1]}" if len(ks) > 1 else f"k = {ks[0]}"
    size_rule = (
        f"at least {smallest_allowed:,} users (max({min_size}, {min_size_share:.0%} of {n:,}))"
    )
    if fallback:
        return (
            f"k = {k}: no k in {span} gave a smallest segment of {size_rule}; {k} is the "
            f"largest smaller k that does (silhouette {score:.3f} on {n_sample:,} sampled users)."
        )
    qualified = scores[scores["qualifies"]].sort_values("silhouette", ascending=False)
    runner = (
        f"; runner-up k = {int(qualified['k'].iloc[1])} ({qualified['silhouette'].iloc[1]:.3f})"
        if len(qualified) > 1
        else ""
    )
    return (
        f"k = {k}: the highest silhouette ({score:.3f}, on {n_sample:,} sampled users) among "
        f"{span} whose smallest segment has {size_rule}; {len(qualified)} of {len(scores)} "
        f"values of k qualified{runner}."
    )


def _one_segment(
    features: pd.DataFrame, scores: pd.DataFrame, note: str, base: dict[str, Any]
) -> LearnedSegments:
    labels = pd.Series(0, index=features.index, name="segment", dtype=np.int64)
    return LearnedSegments(
        labels=labels,
        k=1,
        scores=scores,
        criterion=note,
        profiles=segment_profiles(features, labels),
        **base,
    )


def _activity(columns: Sequence[str]) -> list[str]:
    return [c for c in ACTIVITY_COLUMNS if c in columns]


def _affinities(columns: Sequence[str]) -> list[str]:
    return [c for c in columns if str(c).startswith(AFFINITY_PREFIX)]


def _design(
    features: pd.DataFrame,
    columns: list[str],
    recency_fill: float | None,
    scaler: StandardScaler | None,
    *,
    pool: bool,
) -> tuple[np.ndarray, float, StandardScaler]:
    """The clustering matrix: standardized log1p activity, then raw affinity shares.

    Fits the recency fill and the scaler when none are given; `pool` folds affinity columns
    unknown to `columns` into affinity:other.
    """
    activity = _activity(columns)
    missing = [c for c in activity if c not in features.columns]
    if missing:
        raise EngineError(f"features lack {', '.join(missing)}")
    values = features[activity].astype(float)
    if "recency_days" in values:
        if recency_fill is None:
            observed = values["recency_days"].max()
            recency_fill = max(NO_EVENT_RECENCY_DAYS, 0.0 if pd.isna(observed) else observed)
        values["recency_days"] = values["recency_days"].fillna(recency_fill).clip(lower=0)
    logged = np.log1p(values.fillna(0).clip(lower=0).to_numpy())
    if scaler is None:
        scaler = StandardScaler().fit(logged)
    affinity = _affinities(columns)
    shares = features.reindex(columns=affinity).fillna(0).astype(float)
    other = AFFINITY_PREFIX + OTHER_CATEGORY
    extra = [c for c in _affinities(list(features.columns)) if c not in affinity]
    if pool and extra and other in shares:
        shares[other] += features[extra].fillna(0).sum(axis=1)
    matrix = np.hstack([scaler.transform(logged), shares.to_numpy()])
    return matrix, float(recency_fill or NO_EVENT_RECENCY_DAYS), scaler


def _affinity_factor(matrix: np.ndarray, n_activity: int, weight: float) -> float:
    """The common factor for the affinity shares: the square root of (the activity block's
    first eigenvalue / the affinity block's first eigenvalue) x `weight`, so that the main
    direction of each block carries the same variance (multiple factor analysis weighting)."""
    if weight < 0:
        raise EngineError(f"affinity_weight must be >= 0, not {weight}")
    activity, affinity = (_first_eigenvalue(block) for block in np.hsplit(matrix, [n_activity]))
    if activity <= 1e-12 or affinity <= 1e-12:
        return float(math.sqrt(weight))
    return float(math.sqrt(weight * activity / affinity))


def _first_eigenvalue(block: np.ndarray) -> float:
    if block.shape[1] == 0 or len(block) < 2:
        return 0.0
    if block.shape[1] == 1:
        return float(block.var())
    return float(np.linalg.eigvalsh(np.cov(block, rowvar=False))[-1])


# --------------------------------------------------------------------------------------------
# Profiles and names


def segment_profiles(features: pd.DataFrame, labels: pd.Series) -> pd.DataFrame:
    """Per segment: name, size, share, mean activity and the top categories by mean affinity.

    Recency (mean and median) is over the segment's users with events (`without_events` counts
    the others). Names: see `segment_name`.
    """
    features = _by_user(features, "features")
    labels = labels.reindex(features.index)
    grouped = features.groupby(labels.to_numpy())
    activity = _activity(list(features.columns))
    affinity = [c for c in _affinities(list(features.columns)) if c != AFFINITY_PREFIX + "other"]
    means = grouped[activity].mean() if activity else pd.DataFrame(index=grouped.size().index)
    profiles = pd.DataFrame(
        {"size": grouped.size(), "share": grouped.size() / len(features)}, index=means.index
    )
    profiles = profiles.join(means)
    if "recency_days" in features:
        recency = grouped["recency_days"]
        profiles["median_recency_days"] = recency.median()
        profiles["without_events"] = recency.size() - recency.count()
    mean_affinity = grouped[affinity].mean() if affinity else None
    tops, top_shares, names = [], [], []
    for segment, row in profiles.iterrows():
        top = (
            mean_affinity.loc[segment].sort_values(ascending=False, kind="stable")
            if mean_affinity is not None
            else pd.Series(dtype=float)
        )
        top = top[top > 0].head(PROFILE_TOP_CATEGORIES)
        categories = [c.removeprefix(AFFINITY_PREFIX) for c in top.index]
        tops.append(categories)
        top_shares.append([round(float(s), 3) for s in top])
        names.append(segment_name(row, dict(zip(categories, top, strict=True))))
    profiles.insert(0, "name", _unique(names))
    profiles["top_categories"] = tops
    profiles["top_shares"] = top_shares
    return profiles.rename_axis("segment")


def segment_name(profile: pd.Series | dict[str, Any], top_shares: dict[str, float]) -> str:
    """A segment's name, `<activity> · <categories>`: "Active · Cooking & Gardening".

    Activity from the median recency of the users with events: up to ACTIVE_MAX_DAYS (14)
    "Active", up to COOLING_MAX_DAYS (60) "Cooling", beyond "Lapsed"; "No activity" when more
    than half the segment has no events. Categories: the (at most two) top categories holding
    at least NAME_MIN_SHARE (15%) of the segment's events on average, else "Mixed interests".
    """
    size = profile.get("size", 0) or 0
    without = profile.get("without_events", 0) or 0
    recency = profile.get("median_recency_days", float("nan"))
    if size and without / size > NO_EVENTS_MAJORITY:
        activity = "No activity"
    elif recency is None or pd.isna(recency):
        activity = "Unknown activity"
    elif recency <= ACTIVE_MAX_DAYS:
        activity = "Active"
    elif recency <= COOLING_MAX_DAYS:
        activity = "Cooling"
    else:
        activity = "Lapsed"
    named = [c for c, s in top_shares.items() if s >= NAME_MIN_SHARE][:NAME_MAX_CATEGORIES]
    return f"{activity} · {' & '.join(named) if named else 'Mixed interests'}"


def _unique(names: list[str]) -> list[str]:
    """Names made unique by numbering repeats: "Active · Cooking (2)"."""
    seen: dict[str, int] = {}
    result = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        result.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return result


# --------------------------------------------------------------------------------------------
# Helpers


def _require_columns(table: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise EngineError(f"{name} lacks column(s) {', '.join(missing)}")


def _unix_seconds(values: pd.Series) -> np.ndarray:
    """Datetimes (or unix seconds) as float unix seconds, naive ones taken as UTC."""
    if pd.api.types.is_numeric_dtype(values):
        return values.to_numpy(dtype=float)
    moments = pd.to_datetime(values, utc=True)
    return (moments - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype=float)
