"""Synthetic catalogue, audience and behaviour with planted tastes (pure NumPy/pandas, no Django).

A media/learning publisher: courses, videos, podcasts and articles over twelve topics. Every user
has one to three favourite topics (Dirichlet weights) nudged by their age group, country and plan,
a preferred content-type mix and a heavy-tailed activity level. Interactions follow the user's
topics most of the time (the rest is exploration), favour popular and recent items, run through a
funnel (view -> click -> like / watch / purchase / complete) and always come after the item's
publish date. The planted truth (`tastes`) is returned with the data, so tests and the demo can
check that recommendations follow it.

- `generate(...)` returns `SyntheticData`: items, users and interactions in the project's
  Personalize-style CSV layout (`write_csvs` feeds `manage.py import_data`), plus `tastes`;
  `engine_frames()` gives the engine's lowercase layout.
- `generate_scale(...)` returns `EngineFrames` only, fully vectorised, for benchmarks
  (1M users x 50k items x 20M interactions).

Deterministic for a seed (and a given `now`).

Inside: `vocabulary` (topics and the words of titles, descriptions and names); `catalogue`,
`audience` and `events` (the numeric structure, each from its own random stream); `text` (an
item's title, description and tags); `frames` (the data frames, in either layout).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .audience import audience_draw
from .catalogue import DAY, catalogue_draw
from .events import EVENT_TYPES, engagements_per_user, events_draw
from .frames import (
    csv_ready,
    interactions_frame,
    items_frame,
    scale_interactions,
    scale_items,
    scale_users,
    string_ids,
    tastes_frame,
    users_frame,
)
from .vocabulary import CONTENT_TYPES, LEVELS, TOPICS, Topic

__all__ = [
    "CONTENT_TYPES",
    "EVENT_TYPES",
    "LEVELS",
    "TOPICS",
    "EngineFrames",
    "SyntheticData",
    "Topic",
    "generate",
    "generate_scale",
    "topic_share",
]


@dataclass
class EngineFrames:
    """The engine's layout: lowercase columns, datetimes in UTC, list-valued categories/tags."""

    interactions: pd.DataFrame  # user_id, item_id, timestamp, event_type, event_value
    items: pd.DataFrame  # item_id, title, [description], categories, tags, content_type, ...
    users: pd.DataFrame  # user_id, age_group, country, plan
    tastes: pd.DataFrame  # user_id, topic, weight: the planted truth

    def item_topics(self) -> pd.Series:
        """Each item's topic (its first category), indexed by item_id."""
        return pd.Series(
            [c[0] for c in self.items["categories"]], index=self.items["item_id"], name="topic"
        )

    def topic_share(self, pairs: pd.DataFrame) -> float:
        """Share of (user_id, item_id) pairs (events, recommendations) in the user's topics."""
        return topic_share(pairs, self.tastes, self.item_topics())


@dataclass
class SyntheticData:
    """Items, users and interactions in the Personalize-style CSV layout, plus the truth."""

    items: pd.DataFrame  # ITEM_ID, TITLE, DESCRIPTION, URL, IMAGE_URL, CATEGORIES, TAGS, ...
    users: pd.DataFrame  # USER_ID, EMAIL, EMAIL_OPT_IN, AGE_GROUP, COUNTRY, PLAN
    interactions: pd.DataFrame  # USER_ID, ITEM_ID, TIMESTAMP, EVENT_TYPE, EVENT_VALUE
    tastes: pd.DataFrame  # user_id, topic, weight (favourite topics; weights sum to 1)

    def write_csvs(self, directory: str | Path) -> dict[str, Path]:
        """Write users.csv, items.csv and interactions.csv (UTF-8, header row, `|` lists)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = {name: directory / f"{name}.csv" for name in ("users", "items", "interactions")}
        csv_ready(self.users).to_csv(paths["users"], index=False, encoding="utf-8")
        csv_ready(self.items).to_csv(paths["items"], index=False, encoding="utf-8")
        self.interactions.to_csv(paths["interactions"], index=False, encoding="utf-8")
        return paths

    def engine_frames(self) -> EngineFrames:
        """The same data in the engine's layout (string ids as in the CSVs)."""
        inter = self.interactions
        interactions = pd.DataFrame(
            {
                "user_id": inter["USER_ID"],
                "item_id": inter["ITEM_ID"],
                "timestamp": pd.to_datetime(inter["TIMESTAMP"], unit="s", utc=True),
                "event_type": inter["EVENT_TYPE"],
                "event_value": inter["EVENT_VALUE"],
            }
        )
        it = self.items
        items = pd.DataFrame(
            {
                "item_id": it["ITEM_ID"],
                "title": it["TITLE"],
                "description": it["DESCRIPTION"],
                "categories": it["CATEGORIES"].str.split("|"),
                "tags": it["TAGS"].str.split("|"),
                "content_type": it["CONTENT_TYPE"],
                "published_at": pd.to_datetime(it["PUBLISHED_AT"], unit="s", utc=True),
                "price": it["PRICE"],
                "available": it["AVAILABLE"],
                "url": it["URL"],
                "image_url": it["IMAGE_URL"],
            }
        )
        users = self.users.drop(columns=["EMAIL", "EMAIL_OPT_IN"])
        users = users.rename(columns=str.lower)
        return EngineFrames(interactions, items, users, self.tastes.copy())

    def item_topics(self) -> pd.Series:
        """Each item's topic (its first category), indexed by ITEM_ID."""
        topics = self.items["CATEGORIES"].str.split("|").str[0]
        return pd.Series(topics.to_numpy(), index=self.items["ITEM_ID"], name="topic")

    def topic_share(self, pairs: pd.DataFrame) -> float:
        """Share of pairs (USER_ID/ITEM_ID or user_id/item_id columns) in the user's topics."""
        return topic_share(pairs.rename(columns=str.lower), self.tastes, self.item_topics())


def topic_share(pairs: pd.DataFrame, tastes: pd.DataFrame, item_topics: pd.Series) -> float:
    """Share of `pairs` (user_id, item_id) whose item is in one of the user's planted topics."""
    if pairs.empty:
        return float("nan")
    topic = pairs["item_id"].map(item_topics)
    keys = pd.MultiIndex.from_arrays([pairs["user_id"], topic])
    planted = pd.MultiIndex.from_frame(tastes[["user_id", "topic"]])
    return float(keys.isin(planted).mean())


def generate(
    n_users: int = 2000,
    n_items: int = 600,
    mean_events_per_user: float = 40.0,
    seed: int = 7,
    now: pd.Timestamp | str | float | None = None,
) -> SyntheticData:
    """A catalogue, an audience and their interactions in the CSV layout, with the truth.

    Users average `mean_events_per_user` events in expectation (a few have none: cold
    starts). `now` is the end of the interaction window (default: today, midnight UTC, so runs
    on the same day agree); every timestamp is before it, and after its item's publish date.
    """
    now_s = _now_seconds(now)
    rngs, text_rng = _rngs(seed)
    catalogue = catalogue_draw(rngs[0], n_items, now_s)
    audience = audience_draw(rngs[1], n_users, engagements_per_user(mean_events_per_user))
    events = events_draw(rngs[2], audience, catalogue, now_s, mean_events_per_user * n_users)
    item_ids = string_ids("item", n_items)
    user_ids = string_ids("user", n_users)
    return SyntheticData(
        items=items_frame(text_rng, catalogue, item_ids),
        users=users_frame(text_rng, audience, user_ids),
        interactions=interactions_frame(events, user_ids, item_ids),
        tastes=tastes_frame(audience, user_ids),
    )


def generate_scale(
    n_users: int = 1_000_000,
    n_items: int = 50_000,
    n_interactions: int = 20_000_000,
    seed: int = 7,
    now: pd.Timestamp | str | float | None = None,
) -> EngineFrames:
    """Benchmark-sized data in the engine layout, fully vectorised; integer ids from 0.

    The interaction count is `n_interactions` in expectation (Poisson noise: about 0.02% at
    20M). Items carry short titles, categories and tags but no descriptions; users carry
    age_group, country and plan as categoricals; event_type is a categorical too.
    """
    now_s = _now_seconds(now)
    rngs, text_rng = _rngs(seed)
    catalogue = catalogue_draw(rngs[0], n_items, now_s)
    per_user = engagements_per_user(n_interactions / max(n_users, 1))
    audience = audience_draw(rngs[1], n_users, per_user)
    events = events_draw(rngs[2], audience, catalogue, now_s, n_interactions)
    user_ids = np.arange(n_users, dtype=np.int32)
    return EngineFrames(
        interactions=scale_interactions(events),
        items=scale_items(text_rng, catalogue),
        users=scale_users(audience, user_ids),
        tastes=tastes_frame(audience, user_ids, categorical=True),
    )


def _rngs(seed: int) -> tuple[list[np.random.Generator], random.Random]:
    """Independent streams, so changing the wording never changes the behaviour data."""
    children = np.random.SeedSequence(seed).spawn(4)
    text_seed = int(children[3].generate_state(1)[0])
    return [np.random.default_rng(c) for c in children[:3]], random.Random(text_seed)


def _now_seconds(now: pd.Timestamp | str | float | None) -> int:
    if now is None:
        return int(time.time()) // DAY * DAY
    if isinstance(now, (int, float, np.integer, np.floating)):
        return int(now)
    stamp = pd.Timestamp(now)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
    return int(stamp.timestamp())
