import math

import numpy as np
import pandas as pd
import pytest

from recommendations.engine import EngineError, HybridRecommender
from recommendations.engine.evaluation import (
    catalogue_coverage,
    evaluate,
    map_at_k,
    ndcg_at_k,
    novelty,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
    search,
    stratified_split,
    temporal_split,
)

from .planted import planted_data


def recs_of(rows):
    return pd.DataFrame(rows, columns=["user_id", "item_id", "score", "rank"])


@pytest.fixture
def example():
    # User 1: test {a, b, c}; list a, x, b, y -> hits at ranks 1 and 3.
    # User 2: test {z}; no recommendations at all -> counts as zero.
    recs = recs_of([(1, "a", 4, 1), (1, "x", 3, 2), (1, "b", 2, 3), (1, "y", 1, 4)])
    test = pd.DataFrame({"user_id": [1, 1, 1, 2], "item_id": ["a", "b", "c", "z"]})
    return recs, test


def test_metrics_on_a_hand_computed_example(example):
    recs, test = example
    ndcg_1 = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3) + 1 / math.log2(4))
    assert precision_at_k(recs, test, k=4) == pytest.approx((2 / 4) / 2)
    assert recall_at_k(recs, test, k=4) == pytest.approx((2 / 3) / 2)
    assert ndcg_at_k(recs, test, k=4) == pytest.approx(ndcg_1 / 2)
    # MAP divides by the number of test items (3), not by min(k, n).
    assert map_at_k(recs, test, k=4) == pytest.approx(((1 / 1 + 2 / 3) / 3) / 2)
    assert ranking_metrics(recs, test, k=4) == pytest.approx(
        {
            "map": ((1 + 2 / 3) / 3) / 2,
            "ndcg_at_k": ndcg_1 / 2,
            "precision_at_k": 0.25,
            "recall_at_k": 1 / 3,
        }
    )


def test_metrics_cut_the_list_at_k(example):
    recs, test = example
    assert precision_at_k(recs, test, k=2) == pytest.approx((1 / 2) / 2)
    assert ndcg_at_k(recs, test, k=1) == pytest.approx(0.5)


def test_map_with_more_test_items_than_k():
    recs = recs_of([(1, "a", 2, 1), (1, "b", 1, 2)])
    test = pd.DataFrame({"user_id": [1] * 4, "item_id": ["a", "b", "c", "d"]})
    assert map_at_k(recs, test, k=2) == pytest.approx((1 + 1) / 4)
    assert ndcg_at_k(recs, test, k=2) == pytest.approx(1.0)


def test_coverage_and_novelty():
    recs = recs_of([(1, "a", 1, 1), (2, "b", 1, 1)])
    train = pd.DataFrame({"user_id": [1, 2, 3, 4], "item_id": ["a", "a", "b", "c"]})
    assert catalogue_coverage(recs, n_items=4) == 0.5
    # a: 2 of 4 users -> 1 bit; b: 1 of 4 -> 2 bits.
    assert novelty(recs, train) == pytest.approx(1.5)


def test_stratified_split_is_per_user_and_seeded():
    df = pd.DataFrame({"user_id": [1] * 4 + [2] * 10, "item_id": range(14)})
    train, test = stratified_split(df, test_size=0.25, seed=3)
    assert train.groupby("user_id").size().to_dict() == {1: 3, 2: 8}  # round(7.5) -> 8
    assert test.groupby("user_id").size().to_dict() == {1: 1, 2: 2}
    assert sorted(pd.concat([train, test])["item_id"]) == list(range(14))
    again, _ = stratified_split(df, test_size=0.25, seed=3)
    pd.testing.assert_frame_equal(train, again)


def test_temporal_split_per_user_and_global():
    df = pd.DataFrame(
        {
            "user_id": [1, 1, 1, 1, 2, 2],
            "item_id": list("abcdef"),
            "timestamp": [4, 3, 2, 1, 10, 20],
        }
    )
    train, test = temporal_split(df, test_size=0.25)
    assert set(test["item_id"]) == {"a"}  # user 2 keeps round(1.5) = 2 events in train
    train, test = temporal_split(df, by_user=False, cutoff=4)
    assert set(test["item_id"]) == {"a", "e", "f"}


def test_split_rejects_bad_fraction():
    with pytest.raises(EngineError, match="test_size"):
        stratified_split(pd.DataFrame({"user_id": [1], "item_id": [1]}), test_size=1.5)


def test_evaluate_and_search_on_planted_data():
    interactions, items, users = planted_data()
    train, test = stratified_split(interactions, 0.25, seed=1)
    result = evaluate(HybridRecommender(), train, test, k=5, items=items, users=users)
    popular = evaluate(
        HybridRecommender(cf_algorithm="none", content_weight=0.0, popularity_weight=1.0),
        train,
        test,
        k=5,
    )
    assert result["ndcg_at_k"] > popular["ndcg_at_k"]
    assert {"map", "ndcg_at_k", "recall_at_k", "coverage", "novelty", "fit_seconds"} <= set(result)
    best, table = search(
        train, {"ease_l2": [1.0, 50.0], "content_weight": [0.0, 0.5]}, k=5, items=items
    )
    assert len(table) == 4
    assert table["ndcg_at_k"].is_monotonic_decreasing
    assert best == {n: table.iloc[0][n] for n in ("ease_l2", "content_weight")}
    assert np.isfinite(table["map"]).all()
