"""HybridRecommender: collaborative filtering + content + popularity, with cold start."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from threadpoolctl import threadpool_limits

from . import schema
from .als import AlsModel, available_threads, fit_als
from .coldstart import AttributePopularity
from .content import ContentModel
from .ease import EaseModel, fit_ease
from .errors import EngineError, NotFittedError
from .knn import KnnModel, fit_item_knn
from .matrix import IdMap, build_matrix, interaction_weights, session_matrix
from .popularity import recency_popularity
from .topk import top_k

CF_ALGORITHMS = ("auto", "ease", "als", "knn", "none")
SOURCES = np.array(["collaborative", "content", "popularity"], dtype=object)
# In cold-start lists, overall popularity only breaks ties between segment favourites.
COLD_POPULARITY_SHARE = 0.1
# similar_items blends in content similarity with at least this weight, even when
# content_weight is 0, so items without interactions still get neighbours from their metadata.
MIN_CONTENT_SIMILARITY_WEIGHT = 0.01
# Bump when the fitted attributes change shape, so an old artifact is refused with a reason
# instead of failing somewhere inside scoring.
MODEL_FORMAT = 2
# Users are scored in blocks of about this many (user, item) cells: a few MB, so the passes
# over a block (blend, exclusion, top-k) run in cache, one block per thread.
BATCH_CELLS = 4_000_000
MAX_BATCH_ROWS = 4096  # and never more users than this in one block


def _row_max_normalize(scores: np.ndarray, weight: float = 1.0) -> np.ndarray:
    """Scale each row to max |score| = `weight` so that parts on different scales can be
    blended (in place for float32 input; all-zero rows stay zero)."""
    scores = np.asarray(scores, dtype=np.float32)
    if scores.size == 0:
        return scores
    top = np.maximum(scores.max(axis=1), -scores.min(axis=1))
    scale = np.divide(weight, top, out=np.zeros_like(top), where=top > 0)
    scores *= scale[:, None]
    return scores


def _exclude_seen(scores: np.ndarray, R: sp.csr_matrix) -> None:
    """Set the scores of each row's history items to -inf, straight from the CSR arrays."""
    rows = np.repeat(np.arange(R.shape[0]), np.diff(R.indptr))
    scores[rows, R.indices] = -np.inf


def _as_index(values) -> pd.Index:
    """Ids as an Index: one id, any iterable of ids, or arrays and Series without a copy to
    Python objects (a refresh passes the whole catalogue as candidates)."""
    if values is None:
        return pd.Index([])
    if isinstance(values, (str, bytes, int, np.integer)) or np.isscalar(values):
        return pd.Index([values])
    if isinstance(values, (pd.Index, pd.Series, np.ndarray)):
        return pd.Index(values)
    return pd.Index(list(values))


class HybridRecommender(BaseEstimator):
    """Hybrid top-k recommender over DataFrames (scikit-learn conventions).

    Parts: collaborative filtering (EASE up to `ease_max_items` items, else ALS; or item-kNN),
    content (TF-IDF text + categorical metadata), popularity with recency decay, and cold start
    from user attributes. Part scores are max-normalised per user and blended with
    `cf_weight`, `content_weight` and `popularity_weight`.

    Past `ease_max_items` items nothing item x item is dense: ALS factors score users, and
    content scores come from a rank-`content_components` SVD of the item features. Users are
    scored in blocks on `num_threads` threads (0: every available core), which also sets
    ALS's threads; BLAS is held to one thread meanwhile so that the two do not oversubscribe.

    Parameters (keyword-only)
    -------------------------
    cf_algorithm : "auto" (default: EASE up to `ease_max_items` items, else ALS), "ease",
        "als", "knn" or "none" (no collaborative part).
    ease_max_items : largest catalogue for which "auto" picks EASE and content scores use the
        full item features instead of the SVD; default 20,000.
    ease_l2 : EASE's L2 regularization, added to the Gram matrix diagonal; default 500.
    session_gap_seconds : EASE only: a user's events further apart than this start a new
        session; each session's items become an extra pseudo-user row. Default 30; None: no
        session rows.
    session_weight : EASE only: weight of the session rows (0: none); default 1.
    item_feature_weight : EASE only: weight of the item metadata rows (each category value as
        a pseudo-user of its items) stacked under the interactions (0: none); default 4.
    als_factors : number of ALS latent factors; default 64.
    als_regularization : ALS regularization (lambda), also used to fold in users scored from a
        new history; default 0.05.
    als_alpha : ALS confidence, 1 + alpha x interaction weight, in the fit and the fold-in;
        default 10.
    als_iterations : ALS iterations; default 15.
    knn_neighbors : item-kNN: neighbours kept per item; default 100.
    knn_shrink : item-kNN: shrinkage added to the cosine denominator; default 10.
    cf_weight : blend weight of the collaborative scores (0: off); default 1.
    content_weight : blend weight of the content scores (0: off; `similar_items` still uses
        at least MIN_CONTENT_SIMILARITY_WEIGHT); default 0.02.
    popularity_weight : blend weight of the recency-decayed popularity; default 0 (popularity
        then only serves cold users).
    event_weights : weight per event type; None: `matrix.DEFAULT_EVENT_WEIGHTS`. Types missing
        from the mapping count 1.
    value_events : event types whose `event_value` scales the weight; default ("rating",).
    value_power : exponent on event_value / the type's mean value (0: values ignored);
        default 0.3.
    half_life_days : half-life of the time decay of interaction weights, from the latest
        event; None (default): no decay.
    popularity_half_life_days : half-life of the popularity's recency decay; default 30 days,
        None: no decay.
    text_columns : item columns joined for the TF-IDF text features; default title, description.
    category_columns : item columns one-hot encoded as categorical metadata; None (default):
        chosen automatically (label-like text columns, not `text_columns`, dates or urls).
    content_text_share : share of the text block in the item features, the rest going to
        the categories; default 0.5.
    content_components : rank of the SVD of the item features used for content scores past
        `ease_max_items` items; default 64.
    cold_start_smoothing : pseudo-users shrinking each attribute value's popularity towards
        the global one; default 10.
    batch_size : users scored per block; None (default): about BATCH_CELLS / n_items, at most
        MAX_BATCH_ROWS.
    random_state : seed for ALS and the content SVD; None: not reproducible.
    num_threads : threads scoring user blocks and fitting ALS; 0 (default): every available core.
    """

    def __init__(
        self,
        *,
        cf_algorithm: str = "auto",
        ease_max_items: int = 20000,
        ease_l2: float = 500.0,
        session_gap_seconds: float | None = 30.0,
        session_weight: float = 1.0,
        item_feature_weight: float = 4.0,
        als_factors: int = 64,
        als_regularization: float = 0.05,
        als_alpha: float = 10.0,
        als_iterations: int = 15,
        knn_neighbors: int = 100,
        knn_shrink: float = 10.0,
        cf_weight: float = 1.0,
        content_weight: float = 0.02,
        popularity_weight: float = 0.0,
        event_weights: Mapping[str, float] | None = None,
        value_events: Sequence[str] = ("rating",),
        value_power: float = 0.3,
        half_life_days: float | None = None,
        popularity_half_life_days: float | None = 30.0,
        text_columns: Sequence[str] = ("title", "description"),
        category_columns: Sequence[str] | None = None,
        content_text_share: float = 0.5,
        content_components: int = 64,
        cold_start_smoothing: float = 10.0,
        batch_size: int | None = None,
        random_state: int | None = None,
        num_threads: int = 0,
    ):
        self.cf_algorithm = cf_algorithm
        self.ease_max_items = ease_max_items
        self.ease_l2 = ease_l2
        self.session_gap_seconds = session_gap_seconds
        self.session_weight = session_weight
        self.item_feature_weight = item_feature_weight
        self.als_factors = als_factors
        self.als_regularization = als_regularization
        self.als_alpha = als_alpha
        self.als_iterations = als_iterations
        self.knn_neighbors = knn_neighbors
        self.knn_shrink = knn_shrink
        self.cf_weight = cf_weight
        self.content_weight = content_weight
        self.popularity_weight = popularity_weight
        self.event_weights = event_weights
        self.value_events = value_events
        self.value_power = value_power
        self.half_life_days = half_life_days
        self.popularity_half_life_days = popularity_half_life_days
        self.text_columns = text_columns
        self.category_columns = category_columns
        self.content_text_share = content_text_share
        self.content_components = content_components
        self.cold_start_smoothing = cold_start_smoothing
        self.batch_size = batch_size
        self.random_state = random_state
        self.num_threads = num_threads

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        interactions: pd.DataFrame,
        items: pd.DataFrame | None = None,
        users: pd.DataFrame | None = None,
    ) -> HybridRecommender:
        """Learn all parts from interactions (+ optional item metadata and user attributes)."""
        if self.cf_algorithm not in CF_ALGORITHMS:
            raise EngineError(
                f"cf_algorithm must be one of {CF_ALGORITHMS}, got {self.cf_algorithm!r}"
            )
        inter = schema.interactions_frame(interactions)
        items_df = schema.entity_frame(items, "item_id", "items")
        users_df = schema.entity_frame(users, "user_id", "users")

        item_labels = pd.Index(pd.unique(inter["item_id"]))
        if items_df is not None:
            item_labels = item_labels.append(
                pd.Index(items_df["item_id"]).difference(item_labels, sort=False)
            )
        user_labels = pd.Index(pd.unique(inter["user_id"]))
        if users_df is not None:
            user_labels = user_labels.append(
                pd.Index(users_df["user_id"]).difference(user_labels, sort=False)
            )
        self.item_map_ = IdMap(item_labels)
        self.user_map_ = IdMap(user_labels)
        n_users, n_items = len(self.user_map_), len(self.item_map_)

        user_pos = self.user_map_.positions(inter["user_id"])
        item_pos = self.item_map_.positions(inter["item_id"])
        timestamps = inter["timestamp"].to_numpy(dtype=float)
        self.reference_time_ = float(timestamps.max())
        weights = self._weights(inter)
        self.interactions_ = build_matrix(user_pos, item_pos, weights, (n_users, n_items))
        if self.interactions_.nnz == 0:
            raise EngineError("interactions has no event with a positive weight")

        self.popularity_ = recency_popularity(
            item_pos,
            weights,
            timestamps,
            n_items,
            self.popularity_half_life_days,
            self.reference_time_,
        )
        self.content_ = ContentModel.fit(
            items_df,
            self.item_map_,
            self.text_columns,
            self.category_columns,
            self.content_text_share,
            components=self.content_components if n_items > self.ease_max_items else 0,
            random_state=self.random_state,
        )
        self.algorithm_ = self._resolve_algorithm(n_items)
        self.cf_ = self._fit_cf(user_pos, item_pos, timestamps, weights > 0)
        self.cold_start_ = AttributePopularity(self.cold_start_smoothing).fit(
            users_df, self.user_map_, self.interactions_
        )
        self.format_version_ = MODEL_FORMAT
        return self

    def _weights(self, inter: pd.DataFrame, reference_time: float | None = None) -> np.ndarray:
        ref = self.reference_time_ if reference_time is None else reference_time
        return interaction_weights(
            inter, self.event_weights, self.value_events, self.value_power, self.half_life_days, ref
        )

    def _resolve_algorithm(self, n_items: int) -> str:
        if self.cf_algorithm != "auto":
            return self.cf_algorithm
        return "ease" if n_items <= self.ease_max_items else "als"

    def _fit_cf(
        self,
        user_pos: np.ndarray,
        item_pos: np.ndarray,
        timestamps: np.ndarray,
        positive: np.ndarray,
    ):
        X = self.interactions_
        if self.algorithm_ == "ease":
            extra = []
            if self.session_weight and self.session_gap_seconds is not None:
                sessions = session_matrix(
                    user_pos[positive],
                    item_pos[positive],
                    timestamps[positive],
                    self.session_gap_seconds,
                    X.shape[1],
                )
                extra.append(self.session_weight * sessions)
            if self.item_feature_weight and self.content_.categories is not None:
                extra.append(self.item_feature_weight * self.content_.categories.T.tocsr())
            return EaseModel(fit_ease(X, self.ease_l2, extra))
        if self.algorithm_ == "als":
            U, V = fit_als(
                X,
                self.als_factors,
                self.als_regularization,
                self.als_alpha,
                self.als_iterations,
                self.random_state,
                self.num_threads,
            )
            return AlsModel(U, V, self.als_regularization, self.als_alpha)
        if self.algorithm_ == "knn":
            return KnnModel(fit_item_knn(X, self.knn_neighbors, self.knn_shrink))
        return None

    # ------------------------------------------------------------- public
    def recommend(
        self,
        user_ids,
        k: int = 10,
        exclude_seen: bool = True,
        candidates=None,
        explain: bool = False,
    ) -> pd.DataFrame:
        """Top-k items per user: DataFrame user_id, item_id, score, rank (from 1).

        Unknown users get cold-start lists; `candidates` restricts ranking to those item ids.
        With `explain=True` two columns are added: `source` (collaborative, content, popularity
        or cold_start) and `because_item_id` (the seen item that contributed most, or None).
        """
        self._check_fitted()
        k = schema.check_k(k)
        labels = _as_index(user_ids)
        pos = self.user_map_.positions(labels)
        known = pos >= 0
        rows = self.interactions_[np.where(known, pos, 0)]
        if not known.all():
            rows = sp.diags(known.astype(np.float32)) @ rows
        attributes = None
        if self.cold_start_.enabled:
            attributes = self.cold_start_.known_rows(np.where(known, pos, 0))
            if not known.all():
                attributes = sp.diags(known.astype(np.float32)) @ attributes
        return self._rank(
            rows.tocsr(), pos, attributes, labels, k, exclude_seen, candidates, explain
        )

    def recommend_for_history(
        self,
        history,
        k: int = 10,
        *,
        user_id=None,
        attributes: Mapping | None = None,
        exclude_seen: bool = True,
        candidates=None,
        explain: bool = False,
    ) -> pd.DataFrame:
        """Top-k for one user from a fresh history, without refitting.

        `history` is a list of item ids (weight 1 each) or a DataFrame of events with `item_id`
        (and optionally `timestamp`, `event_type`, `event_value`, weighted as in `fit`). Item ids
        unknown to the model are ignored. With an empty history the user is cold: `attributes`
        (a mapping), else the fitted attributes of `user_id`, else popularity.
        """
        self._check_fitted()
        k = schema.check_k(k)
        row = self._history_row(history)
        attr_rows = None
        if self.cold_start_.enabled:
            if attributes is not None:
                attr_rows = self.cold_start_.encode_mapping(attributes)
            else:
                upos = self.user_map_.positions([user_id])[0] if user_id is not None else -1
                attr_rows = (
                    self.cold_start_.known_rows(np.array([upos]))
                    if upos >= 0
                    else sp.csr_matrix((1, self.cold_start_.value_scores.shape[0]))
                )
        return self._rank(
            row,
            np.array([-1]),
            attr_rows,
            pd.Index([user_id]),
            k,
            exclude_seen,
            candidates,
            explain,
        )

    def similar_items(self, item_ids, k: int = 10) -> pd.DataFrame:
        """Top-k similar items: DataFrame item_id, similar_item_id, score, rank.

        Collaborative similarity blended with content similarity, so items without interactions
        still get neighbours from their metadata.
        """
        self._check_fitted()
        k = schema.check_k(k)
        labels = _as_index(item_ids)
        pos = self.item_map_.strict_positions(labels, "item")
        frames = []
        for start in range(0, len(pos), self._batch_rows()):
            batch = pos[start : start + self._batch_rows()]
            scores = np.zeros((len(batch), len(self.item_map_)), np.float32)
            if self.cf_ is not None and self.cf_weight:
                scores += _row_max_normalize(self.cf_.item_similarity(batch), self.cf_weight)
            if self.content_.enabled:
                weight = max(self.content_weight, MIN_CONTENT_SIMILARITY_WEIGHT)
                scores += _row_max_normalize(self.content_.item_similarity(batch), weight)
            scores[np.arange(len(batch)), batch] = -np.inf
            idx, vals = top_k(scores, k)
            frames.append(
                self._frame(
                    labels[start : start + len(batch)],
                    idx,
                    vals,
                    ("item_id", "similar_item_id"),
                    self.item_map_.labels,
                )
            )
        return (
            pd.concat(frames, ignore_index=True)
            if frames
            else self._empty(("item_id", "similar_item_id"))
        )

    def save(self, path: str | Path) -> Path:
        """Write the fitted model with joblib; returns the path."""
        self._check_fitted()
        path = Path(path)
        joblib.dump(self, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> HybridRecommender:
        model = joblib.load(Path(path))
        if not isinstance(model, cls):
            raise EngineError(f"{path} does not hold a {cls.__name__}")
        saved = getattr(model, "format_version_", None)
        if saved != MODEL_FORMAT:
            raise EngineError(
                f"{path} holds a model of format {saved}; this engine reads format "
                f"{MODEL_FORMAT}: fit (train) it again"
            )
        return model

    # ------------------------------------------------------------ scoring
    def _check_fitted(self) -> None:
        if not hasattr(self, "interactions_"):
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet: call fit(interactions) first."
            )

    def _batch_rows(self) -> int:
        if self.batch_size:
            return int(self.batch_size)
        return max(1, min(MAX_BATCH_ROWS, BATCH_CELLS // max(len(self.item_map_), 1)))

    def _history_row(self, history) -> sp.csr_matrix:
        n_items = len(self.item_map_)
        if isinstance(history, pd.DataFrame):
            frame = history.rename(columns={c: str(c).lower() for c in history.columns})
            schema.require_columns(frame, ["item_id"], "history")
            frame = frame.copy()
            if "timestamp" in frame.columns:
                frame["timestamp"] = schema.to_seconds(frame["timestamp"])
            else:
                frame["timestamp"] = self.reference_time_
            ref = max(self.reference_time_, float(frame["timestamp"].max())) if len(frame) else 0.0
            weights = self._weights(frame, ref) if len(frame) else np.ones(0)
            items = frame["item_id"]
        else:
            items = _as_index(history)
            weights = np.ones(len(items))
        pos = self.item_map_.positions(items)
        ok = pos >= 0
        return build_matrix(np.zeros(int(ok.sum()), np.int64), pos[ok], weights[ok], (1, n_items))

    def _candidate_columns(self, candidates) -> np.ndarray | None:
        if candidates is None:
            return None
        labels = _as_index(candidates)
        if labels.has_duplicates:
            labels = labels.drop_duplicates()
        return self.item_map_.strict_positions(labels, "candidate item")

    def _rank(
        self,
        rows: sp.csr_matrix,
        user_pos: np.ndarray,
        attr_rows: sp.csr_matrix | None,
        labels: pd.Index,
        k: int,
        exclude_seen: bool,
        candidates,
        explain: bool,
    ) -> pd.DataFrame:
        """Top-k for history rows. Users without history depend only on their attribute row,
        so each distinct attribute row is ranked once and its list shared."""
        cols = self._candidate_columns(candidates)
        n = rows.shape[0]
        if n == 0:
            return self._empty(("user_id", "item_id"), explain)
        kk = min(k, len(self.item_map_) if cols is None else len(cols))
        item_idx = np.zeros((n, kk), np.int64)
        vals = np.full((n, kk), -np.inf, np.float32)
        notes = np.full((2, n, kk), None, dtype=object) if explain else None
        warm = np.diff(rows.indptr) > 0
        if warm.all():
            groups = [(slice(None), np.arange(n), None)]
        else:
            cold = np.flatnonzero(~warm)
            keys = (
                attr_rows[cold].toarray()
                if attr_rows is not None
                else np.zeros((len(cold), 0), np.float32)
            )
            _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
            groups = [(cold, cold[first], inverse.reshape(-1))]
            if warm.any():
                warm_rows = np.flatnonzero(warm)
                groups.insert(0, (warm_rows, warm_rows, None))
        for target, source, expand in groups:
            every = isinstance(target, slice)
            got = self._rank_rows(
                rows if every else rows[source],
                user_pos if every else user_pos[source],
                None if attr_rows is None else attr_rows if every else attr_rows[source],
                k,
                exclude_seen,
                cols,
                explain,
            )
            if expand is not None:
                got = [part[expand] for part in got]
            item_idx[target], vals[target] = got[0], got[1]
            if explain:
                notes[0][target], notes[1][target] = got[2], got[3]
        frame = self._frame(labels, item_idx, vals, ("user_id", "item_id"), self.item_map_.labels)
        if explain:
            finite = np.isfinite(vals)
            frame["source"] = notes[0][finite]
            frame["because_item_id"] = notes[1][finite]
        return frame

    def _rank_rows(
        self,
        rows: sp.csr_matrix,
        user_pos: np.ndarray,
        attr_rows: sp.csr_matrix | None,
        k: int,
        exclude_seen: bool,
        cols: np.ndarray | None,
        explain: bool,
    ) -> list[np.ndarray]:
        """[item positions, scores] (+ [source, because] with explain), one row per input row,
        scored in blocks of `_batch_rows()` users spread over the threads."""
        step = self._batch_rows()

        def block(start: int):
            stop = min(start + step, rows.shape[0])
            R = rows[start:stop]
            A = attr_rows[start:stop] if attr_rows is not None else None
            scores, parts, cold_source = self._score_block(R, user_pos[start:stop], A, explain)
            if exclude_seen:
                _exclude_seen(scores, R)
            if cols is not None:
                scores = scores[:, cols]
            idx, vals = top_k(scores, k)
            item_idx = idx if cols is None else cols[idx]
            if not explain:
                return item_idx, vals
            return (item_idx, vals, *self._explain(R, item_idx, parts, cold_source))

        starts = range(0, rows.shape[0], step)
        threads = min(available_threads(self.num_threads), len(starts))
        if threads > 1:
            # NumPy and BLAS release the GIL: one block per thread, single-threaded BLAS.
            with threadpool_limits(1, "blas"), ThreadPoolExecutor(threads) as pool:
                blocks = list(pool.map(block, starts))
        else:
            blocks = [block(start) for start in starts]
        return [np.concatenate(parts) for parts in zip(*blocks, strict=True)]

    def _score_block(
        self, R: sp.csr_matrix, user_pos: np.ndarray, A: sp.csr_matrix | None, keep_parts: bool
    ):
        """Blended scores over all items for a block of users, plus per-part scores for explain.

        Without `keep_parts` the first part's array is reused for the blend (no extra copy).
        """
        n, n_items = R.shape[0], len(self.item_map_)
        warm = np.diff(R.indptr) > 0
        all_warm = bool(warm.all())
        cold_source = np.full(n, "popularity", dtype=object)
        part_scores = {}
        block = None
        if warm.any():
            Rw = R if all_warm else R[warm]
            n_warm = Rw.shape[0]
            if self.cf_ is not None and self.cf_weight:
                upos = user_pos if all_warm else user_pos[warm]
                part_scores[0] = _row_max_normalize(self.cf_.score(Rw, None, upos), self.cf_weight)
            if self.content_.enabled and self.content_weight:
                part_scores[1] = _row_max_normalize(
                    self.content_.score(Rw, None), self.content_weight
                )
            if self.popularity_weight:
                part_scores[2] = np.broadcast_to(
                    (self.popularity_weight * self.popularity_).astype(np.float32),
                    (n_warm, n_items),
                )
            for part in part_scores.values():
                if block is None:
                    reuse = not keep_parts and part.flags.writeable
                    block = part if reuse else np.array(part, dtype=np.float32)
                else:
                    block += part
            if block is None:
                block = np.zeros((n_warm, n_items), np.float32)
        if all_warm:
            return block, (warm, part_scores), cold_source
        scores = np.empty((n, n_items), np.float32)
        if block is not None:
            scores[warm] = block
        cold = ~warm
        base = np.broadcast_to(self.popularity_, (int(cold.sum()), n_items))
        if A is not None and A.nnz:
            Ac = A[cold]
            has_attr = np.diff(Ac.indptr) > 0
            attr = self.cold_start_.score_rows(Ac, None).astype(np.float32)
            scores[cold] = np.where(has_attr[:, None], attr + COLD_POPULARITY_SHARE * base, base)
            cold_source[np.flatnonzero(cold)[has_attr]] = "cold_start"
        else:
            scores[cold] = base
        return scores, (warm, part_scores), cold_source

    def _explain(
        self,
        R: sp.csr_matrix,
        item_idx: np.ndarray,
        parts,
        cold_source: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per pick: the part that contributed most and the history item behind it."""
        warm, part_scores = parts
        n, kk = item_idx.shape
        source = np.repeat(cold_source, kk).reshape(n, kk).astype(object)
        because = np.full((n, kk), None, dtype=object)
        if warm.any() and part_scores:
            keys = sorted(part_scores)
            stacked = np.stack(
                [
                    np.take_along_axis(np.asarray(part_scores[key]), item_idx[warm], axis=1)
                    for key in keys
                ]
            )
            winner = np.asarray(keys)[stacked.argmax(axis=0)]
            source[warm] = SOURCES[winner]
            models = {0: self.cf_, 1: self.content_}
            for row_in_warm, row in enumerate(np.flatnonzero(warm)):
                hist = R.indices[R.indptr[row] : R.indptr[row + 1]]
                weights = R.data[R.indptr[row] : R.indptr[row + 1]]
                for key in (0, 1):
                    sel = winner[row_in_warm] == key
                    if not sel.any():
                        continue
                    contrib = models[key].contributions(hist, weights, item_idx[row][sel])
                    because[row, np.flatnonzero(sel)] = self.item_map_.labels[
                        hist[np.asarray(contrib).argmax(axis=0)]
                    ].to_numpy(dtype=object)
        return source, because

    @staticmethod
    def _frame(
        labels: pd.Index,
        idx: np.ndarray,
        vals: np.ndarray,
        names: tuple[str, str],
        item_labels: pd.Index,
    ) -> pd.DataFrame:
        finite = np.isfinite(vals)
        counts = finite.sum(axis=1)
        ranks = np.broadcast_to(np.arange(1, idx.shape[1] + 1), idx.shape)
        return pd.DataFrame(
            {
                names[0]: np.repeat(labels.to_numpy(), counts),
                names[1]: item_labels.take(idx[finite]).to_numpy(),
                "score": vals[finite].astype(np.float64),
                "rank": ranks[finite].astype(np.int64),
            }
        )

    @staticmethod
    def _empty(names: tuple[str, str], explain: bool = False) -> pd.DataFrame:
        columns = {
            names[0]: [],
            names[1]: [],
            "score": np.array([], float),
            "rank": np.array([], np.int64),
        }
        if explain:
            columns.update(source=[], because_item_id=[])
        return pd.DataFrame(columns)
