"""Segment profiles and readable names ("Active · Cooking & Gardening")."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .features import AFFINITY_PREFIX, activity_columns_in, affinity_columns_in, indexed_by_user

# Naming (on a segment's median recency among its users with events, and mean affinities).
ACTIVE_MAX_DAYS = 14.0  # "Active": median recency up to two weeks
COOLING_MAX_DAYS = 60.0  # "Cooling": up to two months; beyond, "Lapsed"
NO_EVENTS_MAJORITY = 0.5  # more than half the segment without events: "No activity"
NAME_MIN_SHARE = 0.15  # a category enters the name when it holds >= 15% of the events
NAME_MAX_CATEGORIES = 2
PROFILE_TOP_CATEGORIES = 3


def segment_profiles(features: pd.DataFrame, labels: pd.Series) -> pd.DataFrame:
    """Per segment: name, size, share, mean activity and the top categories by mean affinity.

    Recency (mean and median) is over the segment's users with events (`without_events` counts
    the others). Names: see `segment_name`.
    """
    features = indexed_by_user(features, "features")
    labels = labels.reindex(features.index)
    grouped = features.groupby(labels.to_numpy())
    present = list(features.columns)
    activity = activity_columns_in(present)
    affinity = [c for c in affinity_columns_in(present) if c != AFFINITY_PREFIX + "other"]
    means = grouped[activity].mean() if activity else pd.DataFrame(index=grouped.size().index)
    profiles = pd.DataFrame(
        {"size": grouped.size(), "share": grouped.size() / len(features)}, index=means.index
    )
    profiles = profiles.join(means)
    if "recency_days" in features:
        recency = grouped["recency_days"]
        profiles["median_recency_days"] = recency.median()
        profiles["without_events"] = recency.size() - recency.count()
    mean_affinity = grouped[affinity].mean() if affinity else None
    tops, top_shares, names = [], [], []
    for segment, row in profiles.iterrows():
        top = (
            mean_affinity.loc[segment].sort_values(ascending=False, kind="stable")
            if mean_affinity is not None
            else pd.Series(dtype=float)
        )
        top = top[top > 0].head(PROFILE_TOP_CATEGORIES)
        categories = [c.removeprefix(AFFINITY_PREFIX) for c in top.index]
        tops.append(categories)
        top_shares.append([round(float(s), 3) for s in top])
        names.append(segment_name(row, dict(zip(categories, top, strict=True))))
    profiles.insert(0, "name", _unique(names))
    profiles["top_categories"] = tops
    profiles["top_shares"] = top_shares
    return profiles.rename_axis("segment")


def segment_name(profile: pd.Series | dict[str, Any], top_shares: dict[str, float]) -> str:
    """A segment's name, `<activity> · <categories>`: "Active · Cooking & Gardening".

    Activity from the median recency of the users with events: up to ACTIVE_MAX_DAYS (14)
    "Active", up to COOLING_MAX_DAYS (60) "Cooling", beyond "Lapsed"; "No activity" when more
    than half the segment has no events. Categories: the (at most two) top categories holding
    at least NAME_MIN_SHARE (15%) of the segment's events on average, else "Mixed interests".
    """
    size = profile.get("size", 0) or 0
    without = profile.get("without_events", 0) or 0
    recency = profile.get("median_recency_days", float("nan"))
    if size and without / size > NO_EVENTS_MAJORITY:
        activity = "No activity"
    elif recency is None or pd.isna(recency):
        activity = "Unknown activity"
    elif recency <= ACTIVE_MAX_DAYS:
        activity = "Active"
    elif recency <= COOLING_MAX_DAYS:
        activity = "Cooling"
    else:
        activity = "Lapsed"
    named = [c for c, s in top_shares.items() if s >= NAME_MIN_SHARE][:NAME_MAX_CATEGORIES]
    return f"{activity} · {' & '.join(named) if named else 'Mixed interests'}"


def _unique(names: list[str]) -> list[str]:
    """Names made unique by numbering repeats: "Active · Cooking (2)"."""
    seen: dict[str, int] = {}
    result = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        result.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return result
