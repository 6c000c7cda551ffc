"""Top-k selection over score blocks with argpartition (no full sort of the catalogue)."""

from __future__ import annotations

import numpy as np

# Wide rows are first cut into strided groups of GROUP columns: the k best scores lie in the k
# groups with the best maxima, so only those k * GROUP candidates are partitioned.
GROUP = 128
PREFILTER_FACTOR = 4


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of the k best scores per row, best first.

    Rows keep k entries; entries equal to -inf (excluded items) are for the caller to drop.
    Ties are broken by column position among the winners.
    """
    n = scores.shape[1]
    k = min(k, n)
    if k == 0:
        empty = np.empty((scores.shape[0], 0))
        return empty.astype(np.int64), empty
    if k < n:
        if n >= PREFILTER_FACTOR * k * GROUP:
            part, vals = _grouped_candidates(scores, k)
        else:
            part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
            vals = np.take_along_axis(scores, part, axis=1)
    else:
        part = np.broadcast_to(np.arange(n), scores.shape).copy()
        vals = scores.copy()
    # Sort only the k winners; ties broken by item position for determinism.
    order = np.lexsort((part, -vals), axis=1)
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(vals, order, axis=1)


def _grouped_candidates(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best (columns, values) per row, found among the k best groups' members.

    Group g holds columns g, g + n_groups, g + 2 n_groups, ... (a strided view, so the group
    maxima are one vectorised pass); the columns past the last full group are always candidates.
    If a winner's group were not among the k best groups, those k groups' maxima would be k
    other scores at least as high.
    """
    rows, n = scores.shape
    n_groups = n // GROUP
    full = n_groups * GROUP
    maxima = scores[:, :full].reshape(rows, GROUP, n_groups).max(axis=1)
    best = np.argpartition(-maxima, k - 1, axis=1)[:, :k]
    cols = (best[:, :, None] + n_groups * np.arange(GROUP)).reshape(rows, k * GROUP)
    if full < n:
        tail = np.broadcast_to(np.arange(full, n), (rows, n - full))
        cols = np.concatenate([cols, tail], axis=1)
    vals = np.take_along_axis(scores, cols, axis=1)
    pick = np.argpartition(-vals, k - 1, axis=1)[:, :k]
    return np.take_along_axis(cols, pick, axis=1), np.take_along_axis(vals, pick, axis=1)
