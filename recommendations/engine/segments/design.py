"""The clustering matrix: standardized log1p activity, then affinity shares under one factor."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.preprocessing import StandardScaler

from ..errors import EngineError
from .features import AFFINITY_PREFIX, OTHER_CATEGORY, activity_columns_in, affinity_columns_in

NO_EVENT_RECENCY_DAYS = 365.0  # users without events count as at least this long inactive


def design_matrix(
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
    activity = activity_columns_in(columns)
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
    affinity = affinity_columns_in(columns)
    shares = features.reindex(columns=affinity).fillna(0).astype(float)
    other = AFFINITY_PREFIX + OTHER_CATEGORY
    extra = [c for c in affinity_columns_in(list(features.columns)) if c not in affinity]
    if pool and extra and other in shares:
        shares[other] += features[extra].fillna(0).sum(axis=1)
    matrix = np.hstack([scaler.transform(logged), shares.to_numpy()])
    return matrix, float(recency_fill or NO_EVENT_RECENCY_DAYS), scaler


def balanced_affinity_factor(matrix: np.ndarray, n_activity: int, weight: float) -> float:
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
