"""Implicit-feedback ALS (Hu, Koren, Volinsky 2008) through the `implicit` package (CPU)."""

from __future__ import annotations

import os

import numpy as np
import scipy.sparse as sp


def available_threads(requested: int = 0) -> int:
    """`requested` if positive, else the cores this process may run on."""
    if requested and requested > 0:
        return int(requested)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def fit_als(
    X: sp.csr_matrix,
    factors: int,
    regularization: float,
    alpha: float,
    iterations: int,
    random_state: int | None,
    num_threads: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """User and item factor arrays (float32); `num_threads` 0 means every available core."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    # implicit parallelises over users itself (OpenMP); a threaded BLAS underneath only
    # contends, and implicit warns about it when the model is built.
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=factors,
            regularization=regularization,
            alpha=alpha,
            iterations=iterations,
            random_state=random_state,
            num_threads=available_threads(num_threads),
        )
        model.fit(X.tocsr().astype(np.float32), show_progress=False)
    return np.asarray(model.user_factors, np.float32), np.asarray(model.item_factors, np.float32)


class AlsModel:
    """Scores U_u . V_i; users outside the training matrix are folded in by least squares."""

    def __init__(
        self,
        user_factors: np.ndarray,
        item_factors: np.ndarray,
        regularization: float,
        alpha: float,
    ):
        self.U = user_factors
        self.V = item_factors
        self.regularization = regularization
        self.alpha = alpha
        norms = np.linalg.norm(item_factors, axis=1, keepdims=True)
        self.V_unit = item_factors / np.where(norms > 0, norms, 1.0)
        # V'V + lambda I, shared by every fold-in: a one-user refresh then costs one small solve.
        V64 = item_factors.astype(np.float64)
        self.gram = V64.T @ V64 + regularization * np.eye(V64.shape[1])

    def fold_in(self, rows: sp.csr_matrix) -> np.ndarray:
        """User factors for arbitrary history rows (one small solve per row)."""
        base = self.gram
        out = np.zeros((rows.shape[0], self.V.shape[1]), np.float32)
        for r in range(rows.shape[0]):
            idx = rows.indices[rows.indptr[r] : rows.indptr[r + 1]]
            if len(idx) == 0:
                continue
            conf = 1.0 + self.alpha * rows.data[rows.indptr[r] : rows.indptr[r + 1]]
            Vi = self.V[idx].astype(np.float64)
            A = base + (Vi.T * (conf - 1.0)) @ Vi
            out[r] = np.linalg.solve(A, Vi.T @ conf)
        return out

    def score(self, rows: sp.csr_matrix, cols: np.ndarray | None, user_pos=None) -> np.ndarray:
        known = np.zeros(rows.shape[0], bool) if user_pos is None else user_pos >= 0
        if user_pos is not None and known.all():
            users = self.U[user_pos]
        else:
            users = np.empty((rows.shape[0], self.V.shape[1]), np.float32)
            users[known] = self.U[user_pos[known]]
            users[~known] = self.fold_in(rows[~known])
        V = self.V if cols is None else self.V[cols]
        return users @ V.T

    def contributions(self, hist: np.ndarray, weights: np.ndarray, cols: np.ndarray) -> np.ndarray:
        # Factor-space cosine as a proxy for how much each history item explains the pick.
        return weights[:, None] * (self.V_unit[hist] @ self.V_unit[cols].T)

    def item_similarity(self, items: np.ndarray) -> np.ndarray:
        return self.V_unit[items] @ self.V_unit.T
