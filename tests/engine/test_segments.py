import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import silhouette_score

from recommendations.engine import segments
from recommendations.engine.conditions import Condition
from recommendations.engine.errors import EngineError
from recommendations.engine.segments import (
    behaviour_features,
    learn_segments,
    rule_segment_members,
    segment_name,
)
from recommendations.synthetic import generate

NOW = pd.Timestamp("2026-03-01", tz="UTC")


@pytest.fixture
def items():
    return pd.DataFrame(
        {
            "item_id": ["i1", "i2", "i3", "i4"],
            "categories": [["Cooking", "Food"], ["Travel"], ["Cooking"], []],
        }
    )


@pytest.fixture
def interactions():
    rows = [
        ("u1", "i1", "2026-02-28 12:00", "view"),
        ("u1", "i1", "2026-02-28 13:00", "purchase"),
        ("u1", "i2", "2026-01-15 00:00", "view"),
        ("u1", "i3", "2025-10-01 00:00", "complete"),
        ("u2", "i2", "2026-02-20 00:00", "click"),
        ("u2", "i4", "2026-02-20 06:00", "view"),  # uncategorised item: other
        ("u2", "i9", "2026-02-21 00:00", "view"),  # unknown item: other
        ("u2", "i1", "2026-03-02 00:00", "purchase"),  # after now: ignored
    ]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "event_type"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame


def test_features_match_hand_computed_values(interactions, items):
    features = behaviour_features(interactions, items, NOW)

    assert features.index.tolist() == ["u1", "u2"]
    u1, u2 = features.loc["u1"], features.loc["u2"]
    assert u1["recency_days"] == pytest.approx(11 / 24)
    assert [u1[c] for c in segments.COUNT_COLUMNS] == [2, 3, 4, 3, 2]
    assert u2["recency_days"] == pytest.approx(8)
    assert [u2[c] for c in segments.COUNT_COLUMNS] == [3, 3, 3, 2, 0]
    affinity = features.filter(like="affinity:")
    assert affinity.columns.tolist() == ["affinity:Cooking", "affinity:Travel", "affinity:other"]
    assert affinity.loc["u1"].tolist() == pytest.approx([0.75, 0.25, 0.0])
    assert affinity.loc["u2"].tolist() == pytest.approx([0.0, 1 / 3, 2 / 3])


def test_rare_categories_are_pooled_as_other_and_conversions_are_configurable(interactions, items):
    features = behaviour_features(
        interactions, items, NOW, n_categories=1, conversion_types={"click"}
    )

    assert features.filter(like="affinity:").columns.tolist() == [
        "affinity:Cooking",
        "affinity:other",
    ]
    assert features.loc["u2", "affinity:other"] == pytest.approx(1.0)
    assert features["conversions"].tolist() == [0, 1]


def test_listed_users_without_events_get_zero_counts_and_no_recency(interactions, items):
    features = behaviour_features(interactions, items, NOW, user_ids=["u3", "u1"])

    assert features.index.tolist() == ["u3", "u1"]
    assert np.isnan(features.loc["u3", "recency_days"])
    assert features.loc["u3"].drop("recency_days").eq(0).all()
    assert features.loc["u1", "events_total"] == 4


def test_features_refuse_tables_without_the_needed_columns(interactions, items):
    with pytest.raises(EngineError, match="interactions lacks column"):
        behaviour_features(interactions.drop(columns="timestamp"), items, NOW)


@pytest.fixture
def attributes():
    return pd.DataFrame(
        {"country": ["FR", "US", "FR", "FR"], "plan": ["pro", "free", "free", "pro"]},
        index=pd.Index(["u1", "u2", "u3", "u4"], name="user_id"),
    )


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ([Condition("recency_days", "lt", 7)], ["u1"]),
        ([Condition("frequency_30d", "gt", 2)], ["u2"]),
        ([Condition("country", "in", ["FR"])], ["u1", "u3", "u4"]),
        (
            [Condition("country", "equals", "fr"), Condition("events_total", "equals", 0)],
            ["u3", "u4"],
        ),
        ([Condition("affinity:Cooking", "gt", 0.5), Condition("plan", "equals", "pro")], ["u1"]),
        ([], ["u1", "u2", "u3", "u4"]),
    ],
)
def test_rule_segments_combine_feature_and_attribute_conditions(
    interactions, items, attributes, conditions, expected
):
    features = behaviour_features(interactions, items, NOW)

    members = rule_segment_members(features, attributes, conditions)

    assert sorted(members) == expected
    assert members.name == "user_id"


def test_rule_segments_accept_a_user_id_column_and_no_attributes(interactions, items, attributes):
    features = behaviour_features(interactions, items, NOW)
    by_column = attributes.reset_index()

    assert list(
        rule_segment_members(features, by_column, [Condition("plan", "equals", "free")])
    ) == [
        "u2",
        "u3",
    ]
    assert list(rule_segment_members(features, None, [Condition("conversions", "gt", 0)])) == ["u1"]


def test_rule_segments_name_unknown_and_clashing_columns(interactions, items, attributes):
    features = behaviour_features(interactions, items, NOW)

    with pytest.raises(EngineError, match="unknown field 'colour'"):
        rule_segment_members(features, attributes, [Condition("colour", "equals", "red")])
    with pytest.raises(EngineError, match="both have events_total"):
        rule_segment_members(features, attributes.assign(events_total=1), [])


# Learned segments on the synthetic audience -------------------------------------------------


@pytest.fixture(scope="module")
def audience():
    data = generate(n_users=1500, n_items=300, seed=3, now="2026-06-01").engine_frames()
    features = behaviour_features(
        data.interactions, data.items, "2026-06-01", user_ids=data.users["user_id"]
    )
    return data, features, learn_segments(features)


def test_learned_segments_follow_the_planted_tastes(audience):
    data, _, learned = audience
    dominant = (
        data.tastes.sort_values("weight", ascending=False)
        .drop_duplicates("user_id")
        .set_index("user_id")["topic"]
    )
    top = learned.profiles["top_categories"].str[0]
    top_share = learned.profiles["top_shares"].str[0]
    matches = dominant.reindex(learned.labels.index).eq(learned.labels.map(top))
    by_segment = matches.groupby(learned.labels).mean()
    focused = top_share[top_share >= 0.5].index  # segments led by one category

    assert matches.mean() > 0.5  # chance: about 1 in 12 topics
    assert len(focused) >= 4
    assert (by_segment[focused] > 0.6).all()


def test_learned_segments_respect_the_minimum_size_and_state_the_criterion(audience):
    _, features, learned = audience
    smallest_allowed = max(10, int(0.02 * len(features)))  # 30 users

    assert learned.k >= 2
    assert learned.labels.value_counts().min() >= smallest_allowed
    assert learned.scores.columns.tolist() == ["k", "silhouette", "smallest", "qualifies"]
    assert learned.scores["k"].tolist() == list(range(2, 9))
    winner = learned.scores.set_index("k").loc[learned.k]
    qualified = learned.scores[learned.scores["qualifies"]]
    assert winner["silhouette"] == qualified["silhouette"].max()
    assert learned.criterion.startswith(f"k = {learned.k}: the highest silhouette")
    assert "at least 30 users" in learned.criterion


def test_profiles_describe_each_segment(audience):
    _, features, learned = audience
    profiles = learned.profiles

    assert profiles.index.tolist() == list(range(learned.k))
    assert profiles["size"].is_monotonic_decreasing
    assert profiles["size"].sum() == len(features)
    assert profiles["share"].sum() == pytest.approx(1.0)
    assert profiles["name"].is_unique
    assert profiles["top_categories"].map(len).eq(3).all()
    first = profiles.iloc[0]
    assert first["name"].startswith(("Active · ", "Cooling · ", "Lapsed · ", "No activity · "))
    assert {"recency_days", "frequency_30d", "frequency_90d", "without_events"} <= set(profiles)


def test_learned_segments_are_deterministic_and_predict_their_own_users(audience):
    _, features, learned = audience

    again = learn_segments(features)
    restored = pickle.loads(pickle.dumps(learned))

    pd.testing.assert_series_equal(again.labels, learned.labels)
    pd.testing.assert_frame_equal(again.profiles, learned.profiles)
    assert (restored.predict(features) == learned.labels).mean() > 0.99


def test_predict_pools_unknown_categories_and_fills_missing_ones(audience):
    _, features, learned = audience
    renamed = features.rename(columns={"affinity:Cooking": "affinity:Baking"})

    predicted = learned.predict(renamed.drop(columns="affinity:Travel"))

    assert predicted.index.equals(features.index)
    assert predicted.between(0, learned.k - 1).all()


def test_minibatch_kmeans_serves_large_audiences(audience, monkeypatch):
    _, features, _ = audience
    monkeypatch.setattr(segments.learning, "MINIBATCH_ABOVE", 0)

    learned = learn_segments(features, k_range=range(2, 5))

    assert type(learned.model).__name__ == "MiniBatchKMeans"
    assert learned.labels.value_counts().min() >= 30


# Criterion edge cases on hand-made features --------------------------------------------------


def blobs(sizes: list[int], seed: int = 0) -> pd.DataFrame:
    """Groups of users with very different activity and one taste each (A, B, C, ...)."""
    rng = np.random.default_rng(seed)
    frames = []
    for group, size in enumerate(sizes):
        events = rng.poisson(5 * 10**group, size) + 1
        affinity = np.zeros((size, len(sizes)))
        affinity[:, group] = 1.0
        frames.append(
            pd.DataFrame(
                {
                    "recency_days": rng.uniform(1, 3, size) * 10 ** (2 - group),
                    "frequency_30d": events // 6,
                    "frequency_90d": events // 2,
                    "events_total": events,
                    "active_days": np.maximum(events // 3, 1),
                    "conversions": events // 10,
                    **{f"affinity:{chr(65 + g)}": affinity[:, g] for g in range(len(sizes))},
                }
            )
        )
    table = pd.concat(frames, ignore_index=True)
    return table.set_index(pd.Index([f"u{i}" for i in range(len(table))], name="user_id"))


def test_clear_groups_are_found():
    learned = learn_segments(blobs([60, 50, 40]))

    assert learned.k == 3
    assert sorted(learned.labels.value_counts()) == [40, 50, 60]


def test_too_small_groups_fall_back_to_a_smaller_k():
    learned = learn_segments(blobs([100, 100, 20]), k_range=range(3, 6), min_size=50)

    assert learned.k == 2
    assert "largest smaller k" in learned.criterion
    assert learned.labels.value_counts().min() >= 50


def test_no_qualifying_k_gives_one_segment_with_a_note():
    learned = learn_segments(blobs([100, 100, 20]), min_size=150)

    assert learned.k == 1
    assert learned.labels.eq(0).all()
    assert "everyone is in one segment" in learned.criterion
    assert not learned.scores["qualifies"].any()
    assert learned.predict(blobs([5])).eq(0).all()


def test_identical_users_make_one_segment():
    features = blobs([40]).iloc[[0] * 40].set_axis([f"u{i}" for i in range(40)])

    learned = learn_segments(features)

    assert learned.k == 1
    assert "identical" in learned.criterion
    assert learned.profiles["size"].tolist() == [40]


def test_fewer_users_than_the_minimum_size_is_an_error():
    with pytest.raises(EngineError, match="5 users cannot make a segment of at least 10"):
        learn_segments(blobs([5]))
    with pytest.raises(EngineError, match="k_range"):
        learn_segments(blobs([50]), k_range=[1, 2])


def test_silhouettes_match_scikit_learn():
    rng = np.random.default_rng(1)
    points = rng.normal(size=(300, 4))
    points[:100] += 4
    labelings = [(points[:, 0] > 2).astype(int), rng.integers(0, 4, 300)]

    ours = segments.learning._silhouettes(points, labelings)

    assert ours == pytest.approx([silhouette_score(points, labels) for labels in labelings])


@pytest.mark.parametrize(
    ("recency", "without", "shares", "expected"),
    [
        (3.0, 0, {"Cooking": 0.5, "Gardening": 0.3, "Travel": 0.2}, "Active · Cooking & Gardening"),
        (30.0, 0, {"Travel": 0.6, "Cooking": 0.1}, "Cooling · Travel"),
        (90.0, 10, {"Data Science": 0.4}, "Lapsed · Data Science"),
        (5.0, 0, {"Cooking": 0.1, "Travel": 0.1}, "Active · Mixed interests"),
        (np.nan, 60, {}, "No activity · Mixed interests"),
    ],
)
def test_names_follow_the_documented_thresholds(recency, without, shares, expected):
    profile = {"size": 100, "without_events": without, "median_recency_days": recency}

    assert segment_name(profile, shares) == expected
