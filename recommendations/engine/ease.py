"""EASE (Steck 2019): closed-form item-item linear autoencoder, with side-information rows.

Extra rows (sessions, item metadata as pseudo-users) are stacked under the user x item matrix
before the Gram matrix is formed: the "collective" variant of Jeunen et al. (2020).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

DENSE_BLOCK_ROWS = 4096  # side-information blocks up to this many rows: dense Gram product
GRAM_CHUNK_PAIRS = 20_000_000  # bound on the entries of one sparse chunk product


def fit_ease(
    X: sp.csr_matrix, l2: float, extra_rows: list[sp.spmatrix] | None = None
) -> np.ndarray:
    """Item-item weights B (n_items x n_items, zero diagonal, float32); score = X_u @ B.

    The Gram matrix is accumulated straight into one dense array (short blocks such as item
    metadata rows by a dense product, the others in row chunks), never as a sparse
    n_items x n_items product, which is several times larger than the dense one once metadata
    rows make it dense; it is then inverted and scaled in place.
    """
    from scipy.linalg import inv

    blocks = [X] + [r for r in (extra_rows or []) if r is not None and r.shape[0]]
    n = X.shape[1]
    dtype = np.float64 if n <= 8000 else np.float32
    short = [sp.csr_matrix(b) for b in blocks if b.shape[0] <= DENSE_BLOCK_ROWS]
    tall = [sp.csr_matrix(b) for b in blocks if b.shape[0] > DENSE_BLOCK_ROWS]
    if short:
        D = sp.vstack(short).toarray().astype(dtype, copy=False)
        G = D.T @ D
        del D
    else:
        G = np.zeros((n, n), dtype)
    for block in tall:
        _add_gram(G, block)
    G[np.diag_indices(n)] += l2
    # G is symmetric: its transpose is the Fortran-ordered array LAPACK inverts in place, and
    # the inverse's transpose is the C-ordered inverse.
    P = inv(G.T, overwrite_a=True, check_finite=False).T
    del G
    P /= -np.diag(P)
    np.fill_diagonal(P, 0.0)
    return P.astype(np.float32, copy=False)


def _add_gram(G: np.ndarray, A: sp.csr_matrix) -> None:
    """G += A'A, over row chunks whose products hold at most GRAM_CHUNK_PAIRS entries."""
    pairs = np.cumsum(np.diff(A.indptr).astype(np.int64) ** 2)
    start = 0
    while start < A.shape[0]:
        done = pairs[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(pairs, done + GRAM_CHUNK_PAIRS, "right")))
        chunk = A[start:stop]
        product = (chunk.T @ chunk).tocoo()
        G[product.row, product.col] += product.data  # the coordinates are unique
        start = stop


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
