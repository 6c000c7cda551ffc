"""Item popularity with exponential recency decay."""

from __future__ import annotations

import numpy as np

from .matrix import SECONDS_PER_DAY


def recency_popularity(
    item_pos: np.ndarray,
    weights: np.ndarray,
    timestamps: np.ndarray,
    n_items: int,
    half_life_days: float | None,
    reference_time: float,
) -> np.ndarray:
    """Decayed weighted interaction count per item, scaled to max 1 (float32)."""
    w = np.clip(weights, 0.0, None)
    if half_life_days:
        age = np.clip(reference_time - timestamps, 0.0, None) / SECONDS_PER_DAY
        w = w * 0.5 ** (age / half_life_days)
    pop = np.bincount(item_pos, weights=w, minlength=n_items)
    top = pop.max() if len(pop) else 0.0
    return (pop / top if top > 0 else pop).astype(np.float32)
