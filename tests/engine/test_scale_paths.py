"""The large-catalogue paths: grouped top-k, chunked EASE Gram, ALS + content embedding,
threaded block scoring, shared cold-start lists and vectorised event weights."""

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recommendations.engine import HybridRecommender, ease
from recommendations.engine.matrix import interaction_weights
from recommendations.engine.topk import GROUP, top_k

from .planted import category, planted_data


@pytest.fixture(scope="module")
def data():
    return planted_data()


def share_of(recs: pd.DataFrame, cat: str) -> float:
    return recs["item_id"].map(category).eq(cat).mean()


@pytest.mark.parametrize("n", [40 * GROUP, 40 * GROUP + 77])
def test_top_k_on_wide_rows_matches_a_full_sort(n):
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((25, n)).astype(np.float32)
    scores[:, rng.integers(0, n, n // 3)] = -np.inf
    scores[0] = -np.inf
    scores[0, [3, n - 1]] = 1.0  # fewer finite scores than k
    scores[1, : n - 5] = -np.inf  # winners only in the tail past the last full group
    idx, vals = top_k(scores, 10)
    np.testing.assert_array_equal(vals, -np.sort(-scores, axis=1)[:, :10])
    np.testing.assert_array_equal(np.take_along_axis(scores, idx, axis=1), vals)
    assert all(len(set(row)) == 10 for row in idx)


def test_ease_gram_in_chunks_matches_the_closed_form(monkeypatch):
    monkeypatch.setattr(ease, "GRAM_CHUNK_PAIRS", 50)
    monkeypatch.setattr(ease, "DENSE_BLOCK_ROWS", 10)
    X = sp.random(200, 40, density=0.1, format="csr", dtype=np.float32, random_state=1)
    meta = sp.random(5, 40, density=0.5, format="csr", dtype=np.float32, random_state=2)
    A = sp.vstack([X, meta]).toarray().astype(np.float64)
    P = np.linalg.inv(A.T @ A + 3.0 * np.eye(40))
    expected = P / -np.diag(P)
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(ease.fit_ease(X, 3.0, [meta]), expected, atol=1e-6)


def test_large_catalogue_uses_als_and_a_content_embedding(data):
    interactions, items, users = data
    model = HybridRecommender(
        ease_max_items=10, als_factors=8, content_components=4, random_state=0
    ).fit(interactions, items, users)
    assert model.algorithm_ == "als"
    assert model.content_.embedding.shape == (len(model.item_map_), 4)
    assert share_of(model.recommend([0], k=5), "A") >= 0.8
    assert share_of(model.recommend_for_history(["C1", "C2", "C3"], k=5), "C") >= 0.8


def test_small_catalogue_keeps_exact_content_scores(data):
    interactions, items, users = data
    model = HybridRecommender().fit(interactions, items, users)
    assert model.algorithm_ == "ease" and model.content_.embedding is None


def test_threaded_blocks_give_the_single_threaded_lists(data):
    interactions, items, users = data
    params = {"cf_algorithm": "als", "als_factors": 8, "random_state": 0, "batch_size": 7}
    one = HybridRecommender(**params, num_threads=1).fit(interactions, items, users)
    two = HybridRecommender(**params, num_threads=2).fit(interactions, items, users)
    ids = list(range(45)) + ["stranger"]
    pd.testing.assert_frame_equal(
        one.recommend(ids, k=6, explain=True), two.recommend(ids, k=6, explain=True)
    )


def test_mixed_warm_and_cold_users_keep_their_order(data):
    interactions, items, users = data
    users = pd.concat(
        [users, pd.DataFrame([{"user_id": f"new{i}", "segment": "B"} for i in range(3)])]
    )
    model = HybridRecommender().fit(interactions, items, users)
    ids = ["new0", 0, "stranger", "new1", 20, "new2"]
    recs = model.recommend(ids, k=4)
    assert recs["user_id"].drop_duplicates().tolist() == ids
    lists = recs.groupby("user_id", sort=False)["item_id"].apply(list)
    assert lists["new0"] == lists["new1"] == lists["new2"] != lists["stranger"]
    for user in ids:
        alone = model.recommend([user], k=4)
        assert alone["item_id"].tolist() == lists[user]


def test_event_weights_ignore_case_and_dtype():
    types = ["View", "purchase", "RATING", "rating", None]
    frame = pd.DataFrame(
        {"event_value": [None, None, 2.0, 4.0, None], "timestamp": [0.0] * 5},
    )
    expected = [1.0, 5.0, 2 / 3, 4 / 3, 1.0]
    for column in (pd.Series(types, dtype=object), pd.Series(types, dtype="category")):
        weights = interaction_weights(
            frame.assign(event_type=column), None, ["rating"], 1.0, None, 0.0
        )
        np.testing.assert_allclose(weights, expected)


def test_als_fit_does_not_warn_about_blas_threads(data, monkeypatch):
    import implicit.utils

    monkeypatch.setattr(implicit.utils, "_checked_blas_config", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        HybridRecommender(cf_algorithm="als", als_factors=4, als_iterations=2).fit(data[0])
    assert not [w for w in caught if "BLAS" in str(w.message)]
