"""Vectorized helpers over NumPy arrays for the run."""

from __future__ import annotations

import numpy as np


def isin_sorted(values: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """`np.isin` for sorted unique keys, without sorting `values` (which may be millions)."""
    if not len(sorted_keys):
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_keys, values), len(sorted_keys) - 1)
    return sorted_keys[at] == values


def row_codes(matrix: np.ndarray) -> np.ndarray:
    """One integer per row, equal for equal rows of a boolean matrix."""
    if matrix.shape[1] <= 62:
        return matrix.astype(np.int64) @ (np.int64(1) << np.arange(matrix.shape[1], dtype=np.int64))
    return np.unique(matrix, axis=0, return_inverse=True)[1].ravel()


def position_in_group(keys: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each group of equal keys, in the given order (a vectorized cumcount)."""
    if len(keys) == 0:
        return np.empty(0, dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    lengths = np.diff(np.r_[starts, len(keys)])
    position = np.empty(len(keys), dtype=np.int64)
    position[order] = np.arange(len(keys)) - np.repeat(starts, lengths)
    return position


def fill_within_groups(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Fill NaN from the previous value of the same group, else from the next one."""
    filled = _ffill_within(values, groups)
    return _ffill_within(filled[::-1], groups[::-1])[::-1]


def _ffill_within(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    if len(values) == 0:
        return values
    start = np.r_[True, groups[1:] != groups[:-1]]
    source = np.where(~np.isnan(values) | start, np.arange(len(values)), 0)
    return values[np.maximum.accumulate(source)]
