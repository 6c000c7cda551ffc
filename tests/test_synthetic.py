"""The synthetic catalogue, audience and behaviour (pure pandas, no database)."""

import numpy as np
import pandas as pd
import pytest

from recommendations.synthetic import (
    CONTENT_TYPES,
    EVENT_TYPES,
    LEVELS,
    TOPICS,
    SyntheticData,
    generate,
    generate_scale,
)

NOW = pd.Timestamp("2026-01-01", tz="UTC")
NOW_S = int(NOW.timestamp())
DAY = 86_400

ITEM_COLUMNS = [
    "ITEM_ID", "TITLE", "DESCRIPTION", "URL", "IMAGE_URL", "CATEGORIES", "TAGS",
    "CONTENT_TYPE", "PUBLISHED_AT", "PRICE", "AVAILABLE",
]  # fmt: skip
USER_COLUMNS = ["USER_ID", "EMAIL", "EMAIL_OPT_IN", "AGE_GROUP", "COUNTRY", "PLAN"]
INTERACTION_COLUMNS = ["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE", "EVENT_VALUE"]


@pytest.fixture(scope="module")
def data() -> SyntheticData:
    return generate(n_users=2000, n_items=600, mean_events_per_user=40, seed=7, now=NOW)


def _events_with_items(data: SyntheticData) -> pd.DataFrame:
    return data.interactions.merge(data.items, on="ITEM_ID", how="left", validate="many_to_one")


def test_same_seed_same_data_other_seed_other_data():
    a = generate(n_users=300, n_items=120, seed=3, now=NOW)
    b = generate(n_users=300, n_items=120, seed=3, now=NOW)
    for name in ("items", "users", "interactions", "tastes"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    c = generate(n_users=300, n_items=120, seed=4, now=NOW)
    assert not a.items["TITLE"].equals(c.items["TITLE"])
    assert not a.tastes.equals(c.tastes)


def test_column_layouts(data):
    assert list(data.items.columns) == ITEM_COLUMNS
    assert list(data.users.columns) == USER_COLUMNS
    assert list(data.interactions.columns) == INTERACTION_COLUMNS
    assert list(data.tastes.columns) == ["user_id", "topic", "weight"]
    assert (len(data.items), len(data.users)) == (600, 2000)


def test_ids_unique_and_references_exist(data):
    assert data.items["ITEM_ID"].is_unique
    assert data.users["USER_ID"].is_unique
    assert data.users["EMAIL"].is_unique
    assert data.interactions["USER_ID"].isin(data.users["USER_ID"]).all()
    assert data.interactions["ITEM_ID"].isin(data.items["ITEM_ID"]).all()
    assert data.tastes["user_id"].isin(data.users["USER_ID"]).all()


def test_interactions_come_after_publishing_and_inside_the_window(data):
    events = _events_with_items(data)
    assert (events["TIMESTAMP"] > events["PUBLISHED_AT"]).all()
    assert events["TIMESTAMP"].between(NOW_S - 180 * DAY, NOW_S - 1).all()
    ages = (NOW_S - data.items["PUBLISHED_AT"]) / DAY
    assert ages.between(1, 730).all()
    assert ages.median() < 365  # more recent items than old ones


def test_catalogue_reads_like_a_publishers(data):
    items = data.items
    assert set(items["CONTENT_TYPE"]) == set(CONTENT_TYPES)
    topics = items["CATEGORIES"].str.split("|").str[0]
    assert set(topics) == {t.name for t in TOPICS}
    assert items["TITLE"].nunique() > 0.9 * len(items)
    assert items["URL"].is_unique and items["URL"].str.startswith("https://example.com/").all()
    assert items["IMAGE_URL"].str.contains(r"^https://images\.example\.com/.+\.jpg$").all()
    is_course = items["CONTENT_TYPE"] == "course"
    assert (items.loc[is_course, "PRICE"] > 0).all()
    assert (items.loc[~is_course, "PRICE"] == 0).all()
    assert 0.9 < items["AVAILABLE"].mean() < 1.0
    # Tags come from the item's own topic (plus a level), so text features separate topics.
    vocab = {t.name: set(t.tags) | set(LEVELS) for t in TOPICS}
    for topic, tags in zip(topics, items["TAGS"].str.split("|"), strict=True):
        assert set(tags) <= vocab[topic]
    assert items["DESCRIPTION"].str.len().min() > 40


def test_audience_attributes(data):
    users = data.users
    assert 0.8 < users["EMAIL_OPT_IN"].mean() < 0.9
    assert users["EMAIL"].str.endswith("@example.com").all()
    assert set(users["PLAN"]) == {"free", "plus", "pro"}
    weights = data.tastes.groupby("user_id")["weight"].agg(["sum", "size"])
    assert np.allclose(weights["sum"], 1.0, atol=1e-3)
    assert set(weights["size"]) == {1, 2, 3}


def test_attributes_nudge_tastes(data):
    tastes = data.tastes.merge(data.users, left_on="user_id", right_on="USER_ID")

    def share(mask: pd.Series, topic: str) -> float:
        picked = tastes[mask]
        return (
            picked.loc[picked["topic"] == topic, "user_id"].nunique() / picked["user_id"].nunique()
        )

    older = tastes["AGE_GROUP"] == "55+"
    assert share(older, "Gardening") > 2 * share(~older, "Gardening")
    india = tastes["COUNTRY"] == "IN"
    assert share(india, "Data Science") > 1.5 * share(~india, "Data Science")


def test_planted_tastes_drive_the_events(data):
    assert data.topic_share(data.interactions) > 0.85
    events = data.interactions.assign(topic=data.interactions["ITEM_ID"].map(data.item_topics()))
    planted = events.merge(data.tastes, left_on=["USER_ID", "topic"],
                           right_on=["user_id", "topic"], how="left")  # fmt: skip
    per_user = planted["weight"].notna().groupby(planted["USER_ID"]).mean()
    assert per_user.median() > 0.85
    # The heaviest-weighted topic gets the most events.
    top = data.tastes.sort_values("weight").groupby("user_id").tail(1).set_index("user_id")
    busy = events["USER_ID"].value_counts().loc[lambda s: s >= 30].index
    most = (
        events[events["USER_ID"].isin(busy)]
        .groupby("USER_ID")["topic"]
        .agg(lambda s: s.value_counts().index[0])
    )
    assert (most == top.loc[most.index, "topic"]).mean() > 0.7


def test_event_funnel_and_values(data):
    events = _events_with_items(data)
    counts = events["EVENT_TYPE"].value_counts()
    assert set(counts.index) == set(EVENT_TYPES)
    assert counts["view"] > counts["click"] > counts["like"] > counts["purchase"]
    pair = events.groupby(["USER_ID", "ITEM_ID", "EVENT_TYPE"]).size().unstack(fill_value=0)
    assert (pair["click"] <= pair["view"]).all()
    watch = events[events["EVENT_TYPE"] == "watch"]
    assert watch["EVENT_VALUE"].between(0, 1).all()
    assert set(watch["CONTENT_TYPE"]) == {"video", "podcast"}
    purchase = events[events["EVENT_TYPE"] == "purchase"]
    assert (purchase["CONTENT_TYPE"] == "course").all()
    assert np.allclose(purchase["EVENT_VALUE"], purchase["PRICE"])
    others = events[~events["EVENT_TYPE"].isin(["watch", "purchase"])]
    assert others["EVENT_VALUE"].isna().all()
    per_user = events.groupby("USER_ID").size()
    assert 36 < len(events) / len(data.users) < 44  # mean_events_per_user=40
    assert per_user.max() > 5 * per_user.median()  # heavy-tailed activity


def test_write_csvs_round_trip(data, tmp_path):
    paths = data.write_csvs(tmp_path / "out")
    assert {name: p.name for name, p in paths.items()} == {
        "users": "users.csv", "items": "items.csv", "interactions": "interactions.csv",
    }  # fmt: skip
    assert paths["users"].read_text(encoding="utf-8").splitlines()[0] == ",".join(USER_COLUMNS)
    assert "true" in paths["items"].read_text(encoding="utf-8")
    for name, frame in (("users", data.users), ("items", data.items),
                        ("interactions", data.interactions)):  # fmt: skip
        back = pd.read_csv(paths[name])
        pd.testing.assert_frame_equal(back, frame, check_dtype=False)


def test_engine_frames(data):
    frames = data.engine_frames()
    inter = frames.interactions
    assert list(inter.columns) == ["user_id", "item_id", "timestamp", "event_type", "event_value"]
    assert isinstance(inter["timestamp"].dtype, pd.DatetimeTZDtype)
    assert str(inter["timestamp"].dt.tz) == "UTC"
    assert inter["timestamp"].iloc[0].timestamp() == data.interactions["TIMESTAMP"].iloc[0]
    items = frames.items
    for column in ("item_id", "title", "description", "categories", "tags", "content_type",
                   "published_at"):  # fmt: skip
        assert column in items.columns
    assert isinstance(items["categories"].iloc[0], list)
    assert isinstance(items["tags"].iloc[0], list)
    assert list(frames.users.columns) == ["user_id", "age_group", "country", "plan"]
    assert frames.topic_share(inter) == pytest.approx(data.topic_share(data.interactions))


def test_scale_mode_shapes():
    frames = generate_scale(n_users=3000, n_items=200, n_interactions=60_000, seed=1, now=NOW)
    inter = frames.interactions
    assert abs(len(inter) - 60_000) < 0.03 * 60_000
    assert list(inter.columns) == ["user_id", "item_id", "timestamp", "event_type", "event_value"]
    assert inter["user_id"].dtype == np.int32 and inter["item_id"].dtype == np.int32
    assert isinstance(inter["event_type"].dtype, pd.CategoricalDtype)
    assert inter["user_id"].between(0, 2999).all() and inter["item_id"].between(0, 199).all()
    assert len(frames.items) == 200 and frames.items["item_id"].is_unique
    assert len(frames.users) == 3000
    assert "description" not in frames.items.columns
    published = frames.items.set_index("item_id")["published_at"]
    assert (inter["timestamp"].to_numpy() > published.loc[inter["item_id"]].to_numpy()).all()
    assert frames.topic_share(inter) > 0.85
    again = generate_scale(n_users=3000, n_items=200, n_interactions=60_000, seed=1, now=NOW)
    pd.testing.assert_frame_equal(inter, again.interactions)


def test_too_small_a_catalogue_is_refused():
    with pytest.raises(ValueError, match="n_items"):
        generate(n_users=10, n_items=20, now=NOW)
