"""Item-kNN: shrunk cosine similarity between item columns, pruned to the top neighbours."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def fit_item_knn(
    X: sp.csr_matrix, neighbors: int, shrink: float, batch: int = 2048
) -> sp.csr_matrix:
    """Sparse n_items x n_items similarity keeping `neighbors` per column; zero diagonal."""
    Xc = X.tocsc().astype(np.float32)
    norms = np.sqrt(np.asarray(Xc.multiply(Xc).sum(axis=0)).ravel())
    XT = Xc.T.tocsr()
    n = X.shape[1]
    rows, cols, vals = [], [], []
    for start in range(0, n, batch):
        stop = min(start + batch, n)
        block = (XT @ Xc[:, start:stop]).toarray()  # n x b
        block /= norms[:, None] * norms[None, start:stop] + shrink + 1e-9
        block[np.arange(start, stop), np.arange(stop - start)] = 0.0
        k = min(neighbors, n - 1)
        if k <= 0:
            continue
        top = np.argpartition(-block, k - 1, axis=0)[:k]
        top_vals = np.take_along_axis(block, top, axis=0)
        keep = top_vals > 0
        rows.append(top[keep])
        cols.append(np.broadcast_to(np.arange(start, stop), top.shape)[keep])
        vals.append(top_vals[keep])
    if not rows:
        return sp.csr_matrix((n, n), dtype=np.float32)
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n, n),
        dtype=np.float32,
    )


class KnnModel:
    """Scores X_u @ S over a sparse item-item similarity S."""

    def __init__(self, S: sp.csr_matrix):
        self.S = S

    def score(self, rows: sp.csr_matrix, cols: np.ndarray | None, user_pos=None) -> np.ndarray:
        S = self.S if cols is None else self.S[:, cols]
        return np.asarray((rows @ S).toarray())

    def contributions(self, hist: np.ndarray, weights: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return weights[:, None] * self.S[hist][:, cols].toarray()

    def item_similarity(self, items: np.ndarray) -> np.ndarray:
        return self.S[items].toarray()
