"""The generated structure as data frames: the CSV layout, and the benchmark's engine layout."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd

from .audience import AGE_GROUPS, COUNTRIES, PLAN_OPT_IN, PLANS, Audience
from .catalogue import Catalogue
from .events import EVENT_TYPES, Events
from .text import item_text, slug
from .vocabulary import (
    CONTENT_TYPES,
    FIRST_NAMES,
    LAST_NAMES,
    TOPIC_NAMES,
    TOPICS,
    URL_SECTION,
)


def string_ids(prefix: str, n: int) -> np.ndarray:
    return np.array([f"{prefix}-{i:05d}" for i in range(1, n + 1)], dtype=object)


def items_frame(rnd: random.Random, catalogue: Catalogue, item_ids: np.ndarray) -> pd.DataFrame:
    texts = [item_text(rnd, catalogue, i) for i in range(len(item_ids))]
    types = [CONTENT_TYPES[c] for c in catalogue.ctype]
    urls = [
        f"https://example.com/{URL_SECTION[kind]}/{slug(t.title)}-{i}"
        for i, (kind, t) in enumerate(zip(types, texts, strict=True), start=1)
    ]
    return pd.DataFrame(
        {
            "ITEM_ID": item_ids,
            "TITLE": [t.title for t in texts],
            "DESCRIPTION": [t.description for t in texts],
            "URL": urls,
            "IMAGE_URL": [
                f"https://images.example.com/{URL_SECTION[k]}/{i}.jpg"
                for k, i in zip(types, item_ids, strict=True)
            ],
            "CATEGORIES": [f"{TOPICS[t].name}|{TOPICS[t].area}" for t in catalogue.topic],
            "TAGS": ["|".join(t.tags) for t in texts],
            "CONTENT_TYPE": types,
            "PUBLISHED_AT": catalogue.published_at,
            "PRICE": np.round(catalogue.price, 2),
            "AVAILABLE": catalogue.available,
        }
    )


def users_frame(rnd: random.Random, audience: Audience, user_ids: np.ndarray) -> pd.DataFrame:
    n = len(user_ids)
    emails = [
        f"{rnd.choice(FIRST_NAMES)}.{rnd.choice(LAST_NAMES)}{i}@example.com".lower()
        for i in range(1, n + 1)
    ]
    opt_in = np.array([rnd.random() for _ in range(n)]) < PLAN_OPT_IN[audience.plan]
    return pd.DataFrame(
        {
            "USER_ID": user_ids,
            "EMAIL": emails,
            "EMAIL_OPT_IN": opt_in,
            "AGE_GROUP": np.asarray(AGE_GROUPS, dtype=object)[audience.age],
            "COUNTRY": np.asarray(COUNTRIES, dtype=object)[audience.country],
            "PLAN": np.asarray(PLANS, dtype=object)[audience.plan],
        }
    )


def interactions_frame(events: Events, user_ids: np.ndarray, item_ids: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "USER_ID": user_ids[events.user],
            "ITEM_ID": item_ids[events.item],
            "TIMESTAMP": events.timestamp,
            "EVENT_TYPE": np.asarray(EVENT_TYPES, dtype=object)[events.event_type],
            "EVENT_VALUE": events.value.astype(np.float64).round(3),
        }
    )


def tastes_frame(
    audience: Audience, user_ids: np.ndarray, categorical: bool = False
) -> pd.DataFrame:
    used = audience.favourites >= 0
    rows = np.nonzero(used)[0]
    codes = audience.favourites[used]
    topic = (
        pd.Categorical.from_codes(codes, TOPIC_NAMES)
        if categorical
        else np.asarray(TOPIC_NAMES, dtype=object)[codes]
    )
    weight = audience.weights[used]
    return pd.DataFrame(
        {
            "user_id": user_ids[rows],
            "topic": topic,
            "weight": weight if categorical else weight.astype(np.float64).round(4),
        }
    )


def csv_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """Booleans as lowercase true/false, as Personalize's CSVs spell them."""
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_bool_dtype(out[column]):
            out[column] = np.where(out[column], "true", "false")
    return out


def scale_interactions(events: Events) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": events.user,
            "item_id": events.item,
            "timestamp": pd.to_datetime(events.timestamp, unit="s", utc=True),
            "event_type": pd.Categorical.from_codes(events.event_type, EVENT_TYPES),
            "event_value": events.value,
        }
    )


def scale_items(rnd: random.Random, catalogue: Catalogue) -> pd.DataFrame:
    n_items = len(catalogue.topic)
    texts = [item_text(rnd, catalogue, i, describe=False) for i in range(n_items)]
    return pd.DataFrame(
        {
            "item_id": np.arange(n_items, dtype=np.int32),
            "title": [t.title for t in texts],
            "categories": [[TOPICS[t].name, TOPICS[t].area] for t in catalogue.topic],
            "tags": [t.tags for t in texts],
            "content_type": pd.Categorical.from_codes(catalogue.ctype, CONTENT_TYPES),
            "published_at": pd.to_datetime(catalogue.published_at, unit="s", utc=True),
            "price": catalogue.price.astype(np.float32),
            "available": catalogue.available,
        }
    )


def scale_users(audience: Audience, user_ids: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": user_ids,
            "age_group": pd.Categorical.from_codes(audience.age, AGE_GROUPS),
            "country": pd.Categorical.from_codes(audience.country, COUNTRIES),
            "plan": pd.Categorical.from_codes(audience.plan, PLANS),
        }
    )
