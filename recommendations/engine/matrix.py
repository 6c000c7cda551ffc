"""Id maps and the weighted user x item CSR matrix (event weights, values, time decay)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .errors import EngineError

DEFAULT_EVENT_WEIGHTS: dict[str, float] = {
    "view": 1.0,
    "impression": 0.0,
    "click": 2.0,
    "like": 3.0,
    "share": 3.0,
    "add_to_cart": 3.0,
    "purchase": 5.0,
    "rating": 1.0,
}
SECONDS_PER_DAY = 86400.0


class IdMap:
    """Opaque labels <-> contiguous positions."""

    def __init__(self, labels: Sequence | pd.Index):
        self.labels = pd.Index(labels)
        if not self.labels.is_unique:
            raise EngineError("ids must be unique")

    def __len__(self) -> int:
        return len(self.labels)

    def positions(self, labels: Sequence | pd.Index) -> np.ndarray:
        """Positions of labels, -1 for unknown ones."""
        return self.labels.get_indexer(pd.Index(labels))

    def strict_positions(self, labels: Sequence | pd.Index, what: str) -> np.ndarray:
        pos = self.positions(labels)
        if (pos < 0).any():
            unknown = list(pd.Index(labels)[pos < 0][:5])
            n = int((pos < 0).sum())
            raise EngineError(f"{n} unknown {what} id(s), e.g. {unknown}")
        return pos


def interaction_weights(
    df: pd.DataFrame,
    event_weights: Mapping[str, float] | None,
    value_events: Sequence[str],
    value_power: float,
    half_life_days: float | None,
    reference_time: float,
) -> np.ndarray:
    """One weight per interaction row.

    weight = event-type weight * (value / mean value of that type) ** value_power * time decay.
    Event types missing from `event_weights` count 1.
    """
    n = len(df)
    weights = np.ones(n)
    if "event_type" in df.columns:
        table = DEFAULT_EVENT_WEIGHTS if event_weights is None else dict(event_weights)
        # Work on the few distinct types, not on millions of strings.
        codes, uniques = pd.factorize(df["event_type"])
        names = [str(u).lower() for u in uniques] + ["nan"]  # last slot: missing types
        codes = np.where(codes < 0, len(uniques), codes)
        type_of, types = pd.factorize(pd.Index(names))  # "Click" and "click" are one type
        group = type_of[codes]
        weights = np.array([table.get(t, 1.0) for t in types], dtype=float)[group]
        if value_power and "event_value" in df.columns:
            values = df["event_value"].to_numpy(dtype=float)
            is_valued = np.isin(np.asarray(types, dtype=object), list(value_events))
            valued = is_valued[group] & ~np.isnan(values)
            if valued.any():
                # Mean-normalised so that the overall scale (and the tuned L2) stays put.
                g = group[valued]
                sums = np.bincount(g, weights=values[valued], minlength=len(types))
                counts = np.bincount(g, minlength=len(types))
                means = sums[g] / counts[g]
                ratio = np.clip(values[valued] / means, 0.0, None)
                weights[valued] *= ratio**value_power
    if half_life_days:
        age_days = (reference_time - df["timestamp"].to_numpy(dtype=float)) / SECONDS_PER_DAY
        weights *= 0.5 ** (np.clip(age_days, 0.0, None) / half_life_days)
    return weights


def build_matrix(
    user_pos: np.ndarray, item_pos: np.ndarray, weights: np.ndarray, shape: tuple[int, int]
) -> sp.csr_matrix:
    """Sum weights per (user, item), squash repeats with log2(1 + w), drop non-positive cells."""
    X = sp.csr_matrix((weights, (user_pos, item_pos)), shape=shape, dtype=np.float64)
    X.sum_duplicates()
    X.data = np.log2(1.0 + np.clip(X.data, 0.0, None))
    X.eliminate_zeros()
    return X.astype(np.float32)


def session_matrix(
    user_pos: np.ndarray,
    item_pos: np.ndarray,
    timestamps: np.ndarray,
    gap_seconds: float,
    n_items: int,
) -> sp.csr_matrix:
    """Binary session x item matrix: a user's events split where the gap exceeds `gap_seconds`."""
    order = np.lexsort((timestamps, user_pos))
    u, t, i = user_pos[order], timestamps[order], item_pos[order]
    new = np.empty(len(u), dtype=bool)
    new[0] = True
    new[1:] = (u[1:] != u[:-1]) | (np.diff(t) > gap_seconds)
    session = np.cumsum(new) - 1
    S = sp.csr_matrix(
        (np.ones(len(i), dtype=np.float32), (session, i)), shape=(int(session[-1]) + 1, n_items)
    )
    S.data[:] = 1.0
    return S
