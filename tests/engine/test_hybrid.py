import numpy as np
import pandas as pd
import pytest

from recommendations.engine import EngineError, HybridRecommender, NotFittedError
from recommendations.engine.matrix import interaction_weights

from .planted import category, planted_data


@pytest.fixture(scope="module")
def data():
    return planted_data()


@pytest.fixture(scope="module")
def model(data):
    interactions, items, users = data
    return HybridRecommender(random_state=0).fit(interactions, items, users)


def share_of(recs: pd.DataFrame, cat: str) -> float:
    return recs["item_id"].map(category).eq(cat).mean()


def test_user_with_one_taste_gets_mostly_that_category(model):
    recs = model.recommend([0, 20, 40], k=5)
    for user, cat in [(0, "A"), (20, "B"), (40, "C")]:
        assert share_of(recs[recs.user_id == user], cat) >= 0.8


def test_output_columns_ranks_and_order(model):
    recs = model.recommend([0, 1], k=4)
    assert list(recs.columns) == ["user_id", "item_id", "score", "rank"]
    for _, group in recs.groupby("user_id"):
        assert group["rank"].tolist() == [1, 2, 3, 4]
        assert group["score"].is_monotonic_decreasing


def test_exclude_seen_drops_consumed_items(data, model):
    interactions, _, _ = data
    seen = set(interactions.loc[interactions.user_id == 0, "item_id"])
    assert not seen & set(model.recommend([0], k=10)["item_id"])
    assert seen & set(model.recommend([0], k=10, exclude_seen=False)["item_id"])


def test_unknown_user_without_attributes_gets_popular_items(model):
    recs = model.recommend(["stranger"], k=5, explain=True)
    assert len(recs) == 5
    assert recs["user_id"].eq("stranger").all()
    assert set(recs["source"]) == {"popularity"}
    top = model.popularity_.argsort()[::-1][:5]
    assert set(recs["item_id"]) == set(model.item_map_.labels[top])


def test_cold_user_with_attributes_gets_segment_favourites(data):
    interactions, items, users = data
    users = pd.concat([users, pd.DataFrame([{"user_id": "newB", "segment": "B", "age": None}])])
    model = HybridRecommender().fit(interactions, items, users)
    recs = model.recommend(["newB"], k=5, explain=True)
    assert share_of(recs, "B") >= 0.8
    assert set(recs["source"]) == {"cold_start"}


def test_fresh_user_attributes_and_history(model):
    by_attributes = model.recommend_for_history([], k=5, attributes={"segment": "C"})
    assert share_of(by_attributes, "C") >= 0.8
    by_history = model.recommend_for_history(["B1", "B2", "B3"], k=5, user_id="u-fresh")
    assert share_of(by_history, "B") >= 0.8
    assert by_history["user_id"].eq("u-fresh").all()
    assert not {"B1", "B2", "B3"} & set(by_history["item_id"])


def test_history_dataframe_uses_event_weights(model):
    history = pd.DataFrame(
        {
            "item_id": ["A1", "C1", "unknown-item"],
            "event_type": ["purchase", "view", "view"],
            "timestamp": [1_000_000, 1_000_000, 1_000_000],
        }
    )
    recs = model.recommend_for_history(history, k=3)
    assert share_of(recs, "A") >= 2 / 3


def test_cold_items_ranked_by_content_via_candidates(data):
    interactions, items, users = data
    new = pd.DataFrame(
        [
            {
                "item_id": f"{cat}-new-{i}",
                "title": f"{WORDS} {i}",
                "description": "",
                "categories": [cat.lower()],
                "tags": f"t{cat}",
            }
            for cat, WORDS in [("A", "galaxy rocket"), ("B", "kitchen recipe"), ("C", "goal match")]
            for i in range(3)
        ]
    )
    model = HybridRecommender().fit(interactions, pd.concat([items, new]), users)
    recs = model.recommend([0, 20], k=3, candidates=new["item_id"])
    assert set(recs["item_id"]) <= set(new["item_id"])
    assert share_of(recs[recs.user_id == 0], "A") == 1.0
    assert share_of(recs[recs.user_id == 20], "B") == 1.0


def test_candidates_restrict_the_ranking(model):
    candidates = ["A1", "B1", "C1", "A2"]
    recs = model.recommend([0, 20], k=10, candidates=candidates, exclude_seen=False)
    assert set(recs["item_id"]) <= set(candidates)
    assert recs.groupby("user_id").size().max() == 4


def test_explain_names_part_and_seen_item(data, model):
    interactions, _, _ = data
    recs = model.recommend([0], k=5, explain=True)
    assert set(recs["source"]) <= {"collaborative", "content", "popularity"}
    seen = set(interactions.loc[interactions.user_id == 0, "item_id"])
    explained = recs[recs["source"].isin(["collaborative", "content"])]
    assert len(explained) and explained["because_item_id"].isin(seen).all()


def test_similar_items_share_the_category_and_exclude_self(model):
    sims = model.similar_items(["A0", "C0"], k=5)
    assert list(sims.columns) == ["item_id", "similar_item_id", "score", "rank"]
    assert not (sims["item_id"] == sims["similar_item_id"]).any()
    for item in ["A0", "C0"]:
        group = sims[sims.item_id == item]
        assert len(group) == 5
        assert (
            share_of(group.rename(columns={"item_id": "x", "similar_item_id": "item_id"}), item[0])
            >= 0.8
        )


@pytest.mark.parametrize("algorithm", ["als", "knn"])
def test_other_cf_algorithms_find_the_taste(data, algorithm):
    interactions, items, users = data
    model = HybridRecommender(cf_algorithm=algorithm, als_factors=8, random_state=0).fit(
        interactions, items, users
    )
    assert model.algorithm_ == algorithm
    assert share_of(model.recommend([0], k=5), "A") >= 0.8
    assert share_of(model.recommend_for_history(["C1", "C2"], k=5), "C") >= 0.8


def test_auto_uses_als_beyond_the_ease_limit(data):
    interactions, _, _ = data
    model = HybridRecommender(
        ease_max_items=10, als_factors=4, als_iterations=2, random_state=0
    ).fit(interactions)
    assert model.algorithm_ == "als"


def test_same_random_state_gives_same_output(data):
    interactions, items, users = data
    params = {"cf_algorithm": "als", "als_factors": 8, "random_state": 7}
    first = HybridRecommender(**params).fit(interactions, items, users).recommend([0, 30], k=5)
    second = HybridRecommender(**params).fit(interactions, items, users).recommend([0, 30], k=5)
    pd.testing.assert_frame_equal(first, second)


def test_save_load_round_trip(tmp_path, model):
    path = model.save(tmp_path / "model.joblib")
    loaded = HybridRecommender.load(path)
    pd.testing.assert_frame_equal(loaded.recommend([0, 5], k=5), model.recommend([0, 5], k=5))
    assert loaded.get_params() == model.get_params()


def test_an_artifact_of_another_format_is_refused_with_a_reason(tmp_path, model):
    import joblib

    model.format_version_ = 1  # as saved by an older engine
    path = tmp_path / "old.joblib"
    joblib.dump(model, path)
    with pytest.raises(EngineError, match="format 1; this engine reads format 2: fit"):
        HybridRecommender.load(path)


def test_params_follow_sklearn_conventions():
    model = HybridRecommender(ease_l2=10.0)
    assert model.get_params()["ease_l2"] == 10.0
    assert model.set_params(cf_weight=0.5) is model and model.cf_weight == 0.5
    assert not [name for name in vars(model) if name.endswith("_")]


def test_uppercase_personalize_columns_and_ids_are_returned_as_given():
    interactions = pd.DataFrame(
        {
            "USER_ID": ["u1", "u1", "u2", "u2"],
            "ITEM_ID": [10, 11, 10, 12],
            "TIMESTAMP": [1, 2, 3, 4],
        }
    )
    recs = HybridRecommender().fit(interactions).recommend(["u1"], k=2)
    assert recs["user_id"].tolist() == ["u1"]
    assert recs["item_id"].tolist() == [12]


def test_event_weights_value_and_time_decay():
    frame = pd.DataFrame(
        {
            "event_type": ["view", "purchase", "rating", "rating", "mystery"],
            "event_value": [None, None, 2.0, 4.0, None],
            "timestamp": [0.0, 86400.0, 86400.0, 86400.0, 86400.0],
        }
    )
    weights = interaction_weights(
        frame,
        {"view": 1, "purchase": 5, "rating": 1},
        ["rating"],
        1.0,
        half_life_days=1.0,
        reference_time=86400.0,
    )
    np.testing.assert_allclose(weights, [0.5, 5.0, 2 / 3, 4 / 3, 1.0])


# ------------------------------------------------------------------ errors
def test_unfitted_model_raises_not_fitted():
    with pytest.raises(NotFittedError, match="not fitted"):
        HybridRecommender().recommend([1])


def test_empty_interactions_raise():
    with pytest.raises(EngineError, match="empty"):
        HybridRecommender().fit(pd.DataFrame(columns=["user_id", "item_id", "timestamp"]))


def test_missing_columns_are_named():
    with pytest.raises(EngineError, match="timestamp"):
        HybridRecommender().fit(pd.DataFrame({"user_id": [1], "item_id": [2]}))


def test_unknown_candidates_are_named(model):
    with pytest.raises(EngineError, match="nope-1"):
        model.recommend([0], candidates=["A1", "nope-1"])


def test_unknown_similar_item_is_named(model):
    with pytest.raises(EngineError, match="ghost"):
        model.similar_items(["ghost"])


@pytest.mark.parametrize("k", [0, -3, 2.5])
def test_bad_k_raises(model, k):
    with pytest.raises(EngineError, match="k must be"):
        model.recommend([0], k=k)


def test_bad_algorithm_raises(data):
    with pytest.raises(EngineError, match="cf_algorithm"):
        HybridRecommender(cf_algorithm="magic").fit(data[0])


def test_load_rejects_other_objects(tmp_path):
    import joblib

    joblib.dump({"not": "a model"}, tmp_path / "x.joblib")
    with pytest.raises(EngineError):
        HybridRecommender.load(tmp_path / "x.joblib")
