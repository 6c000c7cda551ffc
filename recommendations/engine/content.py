"""Content features: TF-IDF over text columns plus one-hot categorical metadata."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer, TfidfVectorizer
from sklearn.preprocessing import normalize

from .matrix import IdMap

SKIPPED_SUFFIXES = ("_at", "_date", "url", "image", "timestamp")


def split_values(value) -> list[str]:
    """A cell of a multi-valued field: list/tuple/set, or a `|`-separated string."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, (list, tuple, set, np.ndarray)):
        return [str(v).strip() for v in value if str(v).strip()]
    return [v.strip() for v in str(value).split("|") if v.strip()]


def auto_category_columns(items: pd.DataFrame, text_columns: Sequence[str]) -> list[str]:
    """Object/list columns that look like labels: not text, not dates/urls, not unique per row."""
    chosen = []
    for col in items.columns:
        if col == "item_id" or col in text_columns or str(col).endswith(SKIPPED_SUFFIXES):
            continue
        series = items[col]
        if not (
            pd.api.types.is_object_dtype(series)
            or pd.api.types.is_string_dtype(series)
            or isinstance(series.dtype, pd.CategoricalDtype)
        ):
            continue
        hashable = series.map(lambda v: tuple(split_values(v)))
        if len(items) > 20 and hashable.nunique() > 0.9 * len(items):
            continue
        chosen.append(col)
    return chosen


def _category_tokens(items: pd.DataFrame, columns: Sequence[str]) -> list[list[str]]:
    tokens: list[list[str]] = [[] for _ in range(len(items))]
    for col in columns:
        for row, value in enumerate(items[col].tolist()):
            tokens[row].extend(f"{col}={v.lower()}" for v in split_values(value))
    return tokens


class ContentModel:
    """Item feature matrix (rows L2-normalised) and the binary category matrix.

    Items known only from interactions get empty feature rows. With `embedding` (large
    catalogues) user scores come from a truncated SVD of the features, so a block of users is
    scored with one dense product instead of a sparse product whose result is dense anyway.
    """

    def __init__(
        self,
        features: sp.csr_matrix,
        categories: sp.csr_matrix | None,
        category_columns: list[str],
        embedding: np.ndarray | None = None,
    ):
        self.features = features
        self.categories = categories
        self.category_columns = category_columns
        self.has_features = np.diff(features.indptr) > 0
        self.embedding = embedding

    @classmethod
    def fit(
        cls,
        items: pd.DataFrame | None,
        item_map: IdMap,
        text_columns: Sequence[str],
        category_columns: Sequence[str] | None,
        text_share: float,
        components: int = 0,
        random_state: int | None = None,
    ) -> ContentModel:
        """Features from item metadata; `components` > 0 adds a rank-`components` embedding."""
        n = len(item_map)
        if items is None or items.empty:
            return cls(sp.csr_matrix((n, 0), dtype=np.float32), None, [])
        aligned = items.set_index("item_id").reindex(item_map.labels).reset_index()
        text_cols = [c for c in text_columns if c in aligned.columns]
        cat_cols = (
            auto_category_columns(aligned, text_cols)
            if category_columns is None
            else [c for c in category_columns if c in aligned.columns]
        )
        blocks = []
        text = (
            aligned[text_cols].fillna("").astype(str).agg(" ".join, axis=1) if text_cols else None
        )
        if text is not None and text.str.strip().str.len().gt(0).any():
            try:
                T = TfidfVectorizer(
                    stop_words="english", sublinear_tf=True, max_features=50000, dtype=np.float32
                ).fit_transform(text)
                blocks.append((normalize(T), text_share))
            except ValueError:  # only stop words
                pass
        categories = None
        if cat_cols:
            tokens = _category_tokens(aligned, cat_cols)
            if any(tokens):
                C = CountVectorizer(analyzer=lambda x: x, binary=True, dtype=np.float32)
                categories = C.fit_transform(tokens).tocsr()
                idf = TfidfTransformer(sublinear_tf=True).fit_transform(categories)
                blocks.append((normalize(idf), 1.0 - text_share if text_cols else 1.0))
        if not blocks:
            return cls(sp.csr_matrix((n, 0), dtype=np.float32), categories, cat_cols)
        F = sp.hstack([np.sqrt(max(w, 0.0)) * B for B, w in blocks]).tocsr()
        F = normalize(F).astype(np.float32)
        F.eliminate_zeros()
        return cls(F, categories, cat_cols, _embedding(F, components, random_state))

    @property
    def enabled(self) -> bool:
        return self.features.shape[1] > 0

    def profiles(self, rows: sp.csr_matrix) -> sp.csr_matrix:
        """User profiles: weighted sum of history item features, L2-normalised."""
        return normalize(rows @ self.features)

    def score(self, rows: sp.csr_matrix, cols: np.ndarray | None, user_pos=None) -> np.ndarray:
        """Profile-item cosines; with an embedding, proportional to them per row (the hybrid
        max-normalises every row, so the profile's own length does not matter)."""
        if self.embedding is not None:
            E = self.embedding if cols is None else self.embedding[cols]
            return np.asarray(rows @ self.embedding, dtype=np.float32) @ E.T
        F = self.features if cols is None else self.features[cols]
        return np.asarray((self.profiles(rows) @ F.T).toarray())

    def contributions(self, hist: np.ndarray, weights: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return weights[:, None] * (self.features[hist] @ self.features[cols].T).toarray()

    def item_similarity(self, items: np.ndarray) -> np.ndarray:
        return np.asarray((self.features[items] @ self.features.T).toarray())


def _embedding(F: sp.csr_matrix, components: int, random_state: int | None) -> np.ndarray | None:
    """Rows of F projected on its top right singular vectors: E E' ~ F F' (float32)."""
    if components <= 0:
        return None
    if F.shape[1] <= components:
        return np.ascontiguousarray(F.toarray(), dtype=np.float32)
    from sklearn.decomposition import TruncatedSVD

    svd = TruncatedSVD(components, algorithm="randomized", random_state=random_state)
    return np.ascontiguousarray(svd.fit_transform(F), dtype=np.float32)
