"""Behaviour features: one row per user (recency, frequencies, conversions, category affinity)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import EngineError

DAY_SECONDS = 86_400
CONVERSION_TYPES = ("purchase", "complete", "signup")
AFFINITY_PREFIX = "affinity:"
OTHER_CATEGORY = "other"
ACTIVITY_COLUMNS = (
    "recency_days",
    "frequency_30d",
    "frequency_90d",
    "events_total",
    "active_days",
    "conversions",
)
COUNT_COLUMNS = ACTIVITY_COLUMNS[1:]


def behaviour_features(
    interactions: pd.DataFrame,
    items: pd.DataFrame,
    now: pd.Timestamp | str,
    *,
    user_ids: Iterable[Any] | None = None,
    conversion_types: Collection[str] = CONVERSION_TYPES,
    n_categories: int = 20,
) -> pd.DataFrame:
    """One row per user (index `user_id`) describing behaviour up to `now`.

    Columns: `recency_days` (days since the last event), `frequency_30d`, `frequency_90d`
    (events in the last 30/90 days), `events_total`, `active_days` (distinct UTC days with an
    event), `conversions` (events of `conversion_types`) and `affinity:<category>`: the share of
    the user's events on items whose FIRST category is that one, for the `n_categories` most
    common categories (by events), the rest (and unknown or uncategorised items) pooled in
    `affinity:other`. Affinities of a user with events sum to 1.

    Events after `now` are ignored. Rows are the users with events (sorted), or exactly
    `user_ids` when given: a listed user without events has zero counts and affinities and a
    missing (NaN) recency, which `learn_segments` treats as very inactive and which no recency
    condition matches.
    """
    _require_columns(
        interactions, ("user_id", "item_id", "timestamp", "event_type"), "interactions"
    )
    _require_columns(items, ("item_id", "categories"), "items")
    if n_categories < 1:
        raise EngineError(f"n_categories must be at least 1, not {n_categories}")
    now_s = _unix_seconds(pd.Series([pd.Timestamp(now)]))[0]
    seconds = _unix_seconds(interactions["timestamp"])
    past = seconds <= now_s
    events = interactions.loc[past, ["user_id", "item_id", "event_type"]]
    seconds = seconds[past]
    age_days = (now_s - seconds) / DAY_SECONDS

    codes, uniques = pd.factorize(events["user_id"], sort=True)
    n_users = len(uniques)
    total = np.bincount(codes, minlength=n_users)
    last_age = np.full(n_users, np.nan)
    if len(codes):
        last_age = pd.Series(age_days).groupby(codes).min().reindex(range(n_users)).to_numpy()
    day = np.floor(seconds / DAY_SECONDS).astype(np.int64)
    first_day = day.min(initial=0)
    span = day.max(initial=0) - first_day + 1
    user_days = np.unique(codes.astype(np.int64) * span + (day - first_day))
    active_days = np.bincount(user_days // span, minlength=n_users)
    converted = events["event_type"].astype(str).isin(list(conversion_types)).to_numpy()

    table = pd.DataFrame(
        {
            "recency_days": last_age,
            "frequency_30d": np.bincount(codes, weights=age_days <= 30, minlength=n_users),
            "frequency_90d": np.bincount(codes, weights=age_days <= 90, minlength=n_users),
            "events_total": total,
            "active_days": active_days,
            "conversions": np.bincount(codes, weights=converted, minlength=n_users),
        },
        index=pd.Index(uniques, name="user_id"),
    )
    for column in COUNT_COLUMNS:
        table[column] = table[column].astype(np.int64)
    affinity = _affinity(codes, n_users, events["item_id"], items, n_categories)
    table = pd.concat(
        [table, pd.DataFrame(affinity[1], index=table.index, columns=affinity[0])], axis=1
    )
    if user_ids is not None:
        table = reindex_users(table, pd.Index(list(user_ids), name="user_id"))
    return table


def _affinity(
    codes: np.ndarray, n_users: int, item_ids: pd.Series, items: pd.DataFrame, n_categories: int
) -> tuple[list[str], np.ndarray]:
    """Column names and the users x categories matrix of event shares (first category)."""
    first = items["categories"].map(_first_category).to_numpy(dtype=object)
    position = pd.Index(items["item_id"]).get_indexer(item_ids)
    category = np.where(position >= 0, first[position], None)
    cat_codes, cat_names = pd.factorize(pd.Series(category, dtype=object))
    counts = np.bincount(cat_codes[cat_codes >= 0], minlength=len(cat_names))
    order = sorted(range(len(cat_names)), key=lambda c: (-counts[c], str(cat_names[c])))
    kept = [c for c in order if str(cat_names[c]) != OTHER_CATEGORY][:n_categories]
    column_of = np.full(len(cat_names) + 1, len(kept))  # everything else (and -1) -> other
    column_of[kept] = np.arange(len(kept))
    columns = column_of[cat_codes]  # cat_codes -1 reads the last entry: other
    matrix = np.zeros((n_users, len(kept) + 1))
    np.add.at(matrix, (codes, columns), 1.0)
    totals = matrix.sum(axis=1, keepdims=True)
    matrix = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    names = [f"{AFFINITY_PREFIX}{cat_names[c]}" for c in kept] + [AFFINITY_PREFIX + OTHER_CATEGORY]
    return names, matrix


def _first_category(value: Any) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, list | tuple | np.ndarray) and len(value):
        return str(value[0])
    return None


def reindex_users(table: pd.DataFrame, users: pd.Index) -> pd.DataFrame:
    """`table` on exactly `users`; users missing from it get zero counts and affinities."""
    if users.has_duplicates:
        raise EngineError("user_ids has duplicates")
    table = table.reindex(users)
    filled = [c for c in table.columns if c in COUNT_COLUMNS or c.startswith(AFFINITY_PREFIX)]
    table[filled] = table[filled].fillna(0)
    for column in COUNT_COLUMNS:
        if column in table:
            table[column] = table[column].astype(np.int64)
    return table


def indexed_by_user(table: pd.DataFrame, name: str) -> pd.DataFrame:
    """`table` indexed by a unique `user_id` (moved from its column when it has one)."""
    if "user_id" in table.columns:
        table = table.set_index("user_id")
    if table.index.has_duplicates:
        raise EngineError(f"{name}: user ids must be unique")
    return table.rename_axis("user_id")


def activity_columns_in(columns: Sequence[str]) -> list[str]:
    """The ACTIVITY_COLUMNS present in `columns`, in ACTIVITY_COLUMNS order."""
    return [c for c in ACTIVITY_COLUMNS if c in columns]


def affinity_columns_in(columns: Sequence[str]) -> list[str]:
    """The `affinity:<category>` columns among `columns`, in their order."""
    return [c for c in columns if str(c).startswith(AFFINITY_PREFIX)]


def _require_columns(table: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise EngineError(f"{name} lacks column(s) {', '.join(missing)}")


def _unix_seconds(values: pd.Series) -> np.ndarray:
    """Datetimes (or unix seconds) as float unix seconds, naive ones taken as UTC."""
    if pd.api.types.is_numeric_dtype(values):
        return values.to_numpy(dtype=float)
    moments = pd.to_datetime(values, utc=True)
    return (moments - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype=float)
