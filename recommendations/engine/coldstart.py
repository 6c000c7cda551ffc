"""Cold start for users without history: popularity among users sharing attribute values."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .matrix import IdMap

NUMERIC_BINS = 5


def _labels(values: pd.Series) -> pd.Series:
    """Attribute values as strings, integral floats without '.0' (NaN from reindexing)."""

    def label(v):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return None
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            return str(int(v))
        return str(v)

    return values.map(label)


class AttributePopularity:
    """Per attribute value, smoothed item popularity among the users with that value.

    A user's score is global popularity plus, for each known attribute value, how much more (or
    less) users with that value consume the item; values seen on few users are shrunk towards
    global popularity (`smoothing` pseudo-users), so uninformative attributes add little.
    """

    def __init__(self, smoothing: float = 20.0):
        self.smoothing = smoothing
        self.columns: list[str] = []
        self.vocab: dict[str, pd.Index] = {}
        self.bins: dict[str, np.ndarray] = {}
        self.value_scores: np.ndarray | None = None
        self.base: np.ndarray | None = None
        self.user_rows: sp.csr_matrix | None = None

    def _encode_column(self, col: str, values: pd.Series) -> np.ndarray:
        """Value codes into the column's vocabulary, -1 for missing/unknown."""
        if col in self.bins:
            x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
            codes = np.searchsorted(self.bins[col], x, side="right")
            return np.where(np.isnan(x), -1, codes)
        return self.vocab[col].get_indexer(_labels(values))

    def encode(self, attributes: pd.DataFrame) -> sp.csr_matrix:
        """One-hot rows over all attribute values (width = number of values)."""
        n = len(attributes)
        offsets = np.cumsum([0] + [self._width(c) for c in self.columns])
        rows, cols = [], []
        for j, col in enumerate(self.columns):
            if col not in attributes.columns:
                continue
            codes = self._encode_column(col, attributes[col])
            ok = codes >= 0
            rows.append(np.flatnonzero(ok))
            cols.append(codes[ok] + offsets[j])
        if not rows:
            return sp.csr_matrix((n, offsets[-1]), dtype=np.float32)
        r, c = np.concatenate(rows), np.concatenate(cols)
        return sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(n, offsets[-1]))

    def _width(self, col: str) -> int:
        return len(self.bins[col]) + 1 if col in self.bins else len(self.vocab[col])

    def fit(
        self, users: pd.DataFrame | None, user_map: IdMap, X: sp.csr_matrix
    ) -> AttributePopularity:
        if users is None or users.empty:
            return self
        aligned = users.set_index("user_id").reindex(user_map.labels)
        for col in aligned.columns:
            series = users[col]
            if pd.api.types.is_numeric_dtype(series) and series.nunique() > NUMERIC_BINS * 2:
                qs = np.nanquantile(
                    series.to_numpy(dtype=float), np.linspace(0, 1, NUMERIC_BINS + 1)
                )
                self.bins[col] = np.unique(qs[1:-1])
            else:
                values = _labels(series).dropna()
                if values.empty or values.nunique() > max(50, 0.5 * len(values)):
                    continue  # free text or identifiers, not a segment
                self.vocab[col] = pd.Index(sorted(values.unique()))
            self.columns.append(col)
        if not self.columns:
            return self
        A = self.encode(aligned.reset_index(drop=True))
        Xb = X.copy()
        Xb.data[:] = 1.0
        counts = np.asarray((A.T @ Xb).toarray())  # values x items
        n_users = np.asarray(A.sum(axis=0)).ravel()[:, None]
        base = np.asarray(Xb.mean(axis=0)).ravel()[None, :]
        smoothed = (counts + self.smoothing * base) / (n_users + self.smoothing)
        self.value_scores = (smoothed - base).astype(np.float32)
        self.base = base.ravel().astype(np.float32)
        self.user_rows = A
        return self

    @property
    def enabled(self) -> bool:
        return self.value_scores is not None

    def score_rows(self, A: sp.csr_matrix, cols: np.ndarray | None) -> np.ndarray:
        """Share of users expected to consume each item, given the rows' attribute values."""
        V = self.value_scores if cols is None else self.value_scores[:, cols]
        base = self.base if cols is None else self.base[cols]
        return np.asarray(A @ V) + base[None, :]

    def known_rows(self, user_pos: np.ndarray) -> sp.csr_matrix:
        return self.user_rows[user_pos]

    def encode_mapping(self, attributes: Mapping) -> sp.csr_matrix:
        frame = pd.DataFrame([{str(k).lower(): v for k, v in attributes.items()}])
        return self.encode(frame)
