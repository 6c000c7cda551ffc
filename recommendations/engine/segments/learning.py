"""Learned segments: k-means on the features, k chosen by silhouette among big-enough segments."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from ..errors import EngineError
from .design import balanced_affinity_factor, design_matrix
from .features import ACTIVITY_COLUMNS, activity_columns_in, affinity_columns_in, indexed_by_user
from .naming import segment_profiles

KMEANS_N_INIT = 4
# One OpenMP thread: Celery's prefork workers already fill the cores, and k-means threads that
# wait for a busy core spin (measured: 2 s instead of 10 ms for 1,500 users on a loaded 2-core box).
KMEANS_THREADS = 1
SILHOUETTE_CHUNK = 500  # rows of the sample's distance matrix held at once (500 x 10k floats)
MINIBATCH_ABOVE = 200_000  # users; above this MiniBatchKMeans replaces KMeans
MINIBATCH_N_INIT = 3
MINIBATCH_BATCH_SIZE = 4_096


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
        features = indexed_by_user(features, "features")
        if self.model is None:
            return pd.Series(0, index=features.index, name="segment", dtype=np.int64)
        matrix = design_matrix(features, self.columns, self.recency_fill, self.scaler, pool=True)[0]
        matrix[:, len(activity_columns_in(self.columns)) :] *= self.affinity_factor
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
    features = indexed_by_user(features, "features")
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
    present = list(features.columns)
    columns = activity_columns_in(present) + affinity_columns_in(present)
    n_activity = len(activity_columns_in(columns))
    if not n_activity:
        raise EngineError(f"features need activity columns ({', '.join(ACTIVITY_COLUMNS)})")
    matrix, recency_fill, scaler = design_matrix(features, columns, None, None, pool=False)
    factor = balanced_affinity_factor(matrix, n_activity, affinity_weight)
    matrix[:, n_activity:] *= factor
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
