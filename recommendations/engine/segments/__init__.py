"""Audience segments: behaviour features, rule-based members and learned (k-means) segments.

Pure pandas/scikit-learn, no Django. Three steps:

- `behaviour_features(interactions, items, now)`: one row per user with recency, frequency,
  conversions and category affinity (the share of the user's events per top-level category).
- `rule_segment_members(features, attributes, conditions)`: the users meeting every `Condition`
  on those features and on user attributes (country, plan, ...).
- `learn_segments(features)`: k-means on the standardized features, k chosen by the highest
  silhouette among the k whose smallest segment is big enough not to be noise; each segment gets
  a profile and a readable name ("Active · Cooking & Gardening"). `LearnedSegments.predict`
  assigns new users to the learned segments.
"""

from .features import (
    ACTIVITY_COLUMNS,
    AFFINITY_PREFIX,
    CONVERSION_TYPES,
    COUNT_COLUMNS,
    OTHER_CATEGORY,
    behaviour_features,
)
from .learning import SCORE_COLUMNS, LearnedSegments, learn_segments
from .naming import segment_name, segment_profiles
from .rule_segments import rule_segment_members

__all__ = [
    "ACTIVITY_COLUMNS",
    "AFFINITY_PREFIX",
    "CONVERSION_TYPES",
    "COUNT_COLUMNS",
    "OTHER_CATEGORY",
    "SCORE_COLUMNS",
    "LearnedSegments",
    "behaviour_features",
    "learn_segments",
    "rule_segment_members",
    "segment_name",
    "segment_profiles",
]
