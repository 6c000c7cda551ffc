"""Implicit-feedback ALS (Hu, Koren, Volinsky 2008) through the `implicit` package (CPU)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def fit_als(
    X: sp.csr_matrix,
    factors: int,
    regularization: float,
    alpha: float,
    iterations: int,
    random_state: int | None,
    num_threads: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """User and item factor arrays (float32)."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    # implicit parallelises over users itself; a threaded BLAS underneath only contends.
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=factors,
            regularization=regularization,
            alpha=alpha,
            iterations=iterations,
            random_state=random_state,
            num_threads=num_threads,
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

    def fold_in(self, rows: sp.csr_matrix) -> np.ndarray:
        """User factors for arbitrary history rows (one small solve per row)."""
        V = self.V.astype(np.float64)
        base = V.T @ V + self.regularization * np.eye(V.shape[1])
        out = np.zeros((rows.shape[0], V.shape[1]), np.float32)
        for r in range(rows.shape[0]):
            idx = rows.indices[rows.indptr[r] : rows.indptr[r + 1]]
            if len(idx) == 0:
                continue
            conf = 1.0 + self.alpha * rows.data[rows.indptr[r] : rows.indptr[r + 1]]
            Vi = V[idx]
            A = base + (Vi.T * (conf - 1.0)) @ Vi
            out[r] = np.linalg.solve(A, Vi.T @ conf)
        return out

    def score(self, rows: sp.csr_matrix, cols: np.ndarray | None, user_pos=None) -> np.ndarray:
        if user_pos is not None and (user_pos >= 0).all():
            users = self.U[user_pos]
        else:
            users = self.fold_in(rows)
            if user_pos is not None:
                known = user_pos >= 0
                users[known] = self.U[user_pos[known]]
        V = self.V if cols is None else self.V[cols]
        return users @ V.T

    def contributions(self, hist: np.ndarray, weights: np.ndarray, cols: np.ndarray) -> np.ndarray:
        # Factor-space cosine as a proxy for how much each history item explains the pick.
        return weights[:, None] * (self.V_unit[hist] @ self.V_unit[cols].T)

    def item_similarity(self, items: np.ndarray) -> np.ndarray:
        return self.V_unit[items] @ self.V_unit.T
