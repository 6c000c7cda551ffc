"""Top-k selection over score blocks with argpartition (no full sort of the catalogue)."""

from __future__ import annotations

import numpy as np


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of the k best scores per row, best first.

    Rows keep k entries; entries equal to -inf (excluded items) are for the caller to drop.
    """
    n = scores.shape[1]
    k = min(k, n)
    if k == 0:
        empty = np.empty((scores.shape[0], 0))
        return empty.astype(np.int64), empty
    if k < n:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(n), scores.shape).copy()
    vals = np.take_along_axis(scores, part, axis=1)
    # Sort only the k winners; ties broken by item position for determinism.
    order = np.lexsort((part, -vals), axis=1)
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(vals, order, axis=1)
