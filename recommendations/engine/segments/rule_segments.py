"""Rule-based segments: the users meeting conditions on features and attributes."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from ..conditions import Condition, conditions_mask
from ..errors import EngineError
from .features import indexed_by_user, reindex_users


def rule_segment_members(
    features: pd.DataFrame,
    attributes: pd.DataFrame | None,
    conditions: Sequence[Condition],
) -> pd.Index:
    """The user ids meeting every condition, on feature and attribute columns alike.

    `features` comes from `behaviour_features`; `attributes` (age_group, country, plan, ...) is
    indexed by user_id or has a `user_id` column. Users with attributes but no feature row count
    as users without events (zero counts and affinities, no recency), so `country in [...]`
    finds them and `recency_days lt 7` does not. No conditions: every user.
    """
    features = indexed_by_user(features, "features")
    table = features
    if attributes is not None:
        attributes = indexed_by_user(attributes, "attributes")
        clash = sorted(set(features.columns) & set(attributes.columns))
        if clash:
            raise EngineError(f"features and attributes both have {', '.join(clash)}")
        users = features.index.union(attributes.index, sort=False)
        table = reindex_users(features, users).join(attributes)
    return pd.Index(table.index[conditions_mask(table, conditions)], name="user_id")
