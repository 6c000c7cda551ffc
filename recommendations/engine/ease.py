"""EASE (Steck 2019): closed-form item-item linear autoencoder, with side-information rows.

Extra rows (sessions, item metadata as pseudo-users) are stacked under the user x item matrix
before the Gram matrix is formed: the "collective" variant of Jeunen et al. (2020).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def fit_ease(
    X: sp.csr_matrix, l2: float, extra_rows: list[sp.spmatrix] | None = None
) -> np.ndarray:
    """Item-item weights B (n_items x n_items, zero diagonal, float32); score = X_u @ B."""
    blocks = [X] + [r for r in (extra_rows or []) if r is not None and r.shape[0]]
    A = sp.vstack(blocks).tocsr() if len(blocks) > 1 else X
    n = A.shape[1]
    dtype = np.float64 if n <= 8000 else np.float32
    G = (A.T @ A).toarray().astype(dtype, copy=False)
    G[np.diag_indices(n)] += l2
    P = np.linalg.inv(G)
    del G
    B = P / (-np.diag(P))
    np.fill_diagonal(B, 0.0)
    return B.astype(np.float32, copy=False)


class EaseModel:
    """Scores and item-item relations from an EASE weight matrix."""

    def __init__(self, B: np.ndarray):
        self.B = B

    def score(self, rows: sp.csr_matrix, cols: np.ndarray | None, user_pos=None) -> np.ndarray:
        B = self.B if cols is None else self.B[:, cols]
        return np.asarray(rows @ B)

    def contributions(self, hist: np.ndarray, weights: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Per history item (rows) contribution to the score of each col item."""
        return weights[:, None] * self.B[np.ix_(hist, cols)]

    def item_similarity(self, items: np.ndarray) -> np.ndarray:
        return self.B[items].astype(np.float32)
