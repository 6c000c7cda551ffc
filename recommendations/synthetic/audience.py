"""The audience: attributes, favourite topics nudged by them, content-type mix, activity."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .vocabulary import TOPIC_NAMES, TOPIC_SHARE, TOPICS

AGE_GROUPS = ("18-24", "25-34", "35-44", "45-54", "55+")
AGE_SHARE = np.array([0.13, 0.29, 0.25, 0.18, 0.15])
COUNTRIES = ("US", "GB", "DE", "FR", "IN", "BR", "CA", "AU", "JP", "ES")
COUNTRY_SHARE = np.array([0.32, 0.14, 0.09, 0.07, 0.10, 0.06, 0.07, 0.06, 0.05, 0.04])
PLANS = ("free", "plus", "pro")
PLAN_SHARE = np.array([0.72, 0.20, 0.08])
PLAN_ACTIVITY = np.array([0.8, 1.5, 2.2])  # relative activity level
PLAN_OPT_IN = np.array([0.82, 0.92, 0.95])  # ~85% email opt-in overall

# fmt: off
# Additive nudges to the log-odds of picking a topic as a favourite.
AGE_TOPIC_AFFINITY: dict[str, dict[str, float]] = {
    "18-24": {"Fitness": 0.8, "Music Production": 0.9, "Travel": 0.5, "Python Programming": 0.5,
              "Design": 0.4, "Gardening": -1.0, "History": -0.4, "Personal Finance": -0.3},
    "25-34": {"Python Programming": 0.6, "Data Science": 0.7, "Personal Finance": 0.4,
              "Marketing": 0.4, "Fitness": 0.4, "Travel": 0.3, "Gardening": -0.6},
    "35-44": {"Personal Finance": 0.6, "Cooking": 0.5, "Marketing": 0.4, "Data Science": 0.3,
              "Music Production": -0.4},
    "45-54": {"Cooking": 0.5, "Gardening": 0.6, "Personal Finance": 0.5, "History": 0.4,
              "Music Production": -0.6, "Fitness": -0.2},
    "55+": {"Gardening": 1.1, "History": 1.0, "Travel": 0.5, "Cooking": 0.4,
            "Python Programming": -0.6, "Music Production": -0.9, "Fitness": -0.4},
}
COUNTRY_TOPIC_AFFINITY: dict[str, dict[str, float]] = {
    "US": {"Personal Finance": 0.5, "Marketing": 0.4, "Fitness": 0.3},
    "GB": {"Gardening": 0.7, "History": 0.5},
    "DE": {"Travel": 0.5, "Data Science": 0.3, "Design": 0.3},
    "FR": {"Cooking": 0.8, "History": 0.3, "Design": 0.3},
    "IN": {"Python Programming": 0.9, "Data Science": 0.9, "Cooking": -0.3},
    "BR": {"Music Production": 0.8, "Fitness": 0.5, "Marketing": 0.3},
    "CA": {"Travel": 0.4, "Personal Finance": 0.3},
    "AU": {"Travel": 0.6, "Fitness": 0.4, "Gardening": 0.3},
    "JP": {"Photography": 1.0, "Design": 0.5, "Cooking": 0.3},
    "ES": {"Travel": 0.5, "Cooking": 0.5, "Music Production": 0.3},
}
PLAN_TOPIC_AFFINITY: dict[str, dict[str, float]] = {
    "plus": {"Photography": 0.2, "Design": 0.2},
    "pro": {"Python Programming": 0.4, "Data Science": 0.5, "Marketing": 0.4, "Design": 0.4},
}
# fmt: on
FAVOURITE_COUNT_SHARE = np.array([0.30, 0.45, 0.25])  # users with 1, 2 or 3 favourite topics
TASTE_ALPHA = 2.0  # Dirichlet concentration of the favourite-topic weights

# Preferred content-type mix: Dirichlet around the base mix, nudged by age group and plan.
BASE_TYPE_MIX = np.array([0.40, 0.28, 0.17, 0.15])  # article, video, podcast, course
TYPE_MIX_CONCENTRATION = 6.0
# fmt: off
AGE_TYPE_FACTOR = np.array([
    [0.8, 1.6, 0.8, 1.0],  # 18-24
    [1.0, 1.1, 1.4, 1.1],  # 25-34
    [1.0, 1.0, 1.3, 1.0],  # 35-44
    [1.3, 0.9, 1.0, 0.9],  # 45-54
    [1.5, 0.8, 0.7, 0.8],  # 55+
])
PLAN_TYPE_FACTOR = np.array([
    [1.0, 1.0, 1.0, 0.8],  # free
    [1.0, 1.0, 1.0, 1.5],  # plus
    [0.9, 1.0, 1.0, 2.5],  # pro
])
# fmt: on
ACTIVITY_SIGMA = 1.1  # log-normal spread of activity: a few heavy users, many light ones


@dataclass
class Audience:
    age: np.ndarray  # int8 index into AGE_GROUPS
    country: np.ndarray  # int8
    plan: np.ndarray  # int8
    favourites: np.ndarray  # (n, 3) int16 topic indexes, -1 past the user's count
    weights: np.ndarray  # (n, 3) float32 favourite weights, rows sum to 1
    type_mix: np.ndarray  # (n, 4) float32 content-type preferences, rows sum to 1
    engagements: np.ndarray  # float64 expected number of items engaged with


def _affinity(table: dict[str, dict[str, float]], keys: tuple[str, ...]) -> np.ndarray:
    """A (len(keys), n_topics) matrix of topic log-odds nudges."""
    out = np.zeros((len(keys), len(TOPICS)))
    for row, key in enumerate(keys):
        for name, value in table.get(key, {}).items():
            out[row, TOPIC_NAMES.index(name)] = value
    return out


def _dirichlet_rows(rng: np.random.Generator, alpha: np.ndarray) -> np.ndarray:
    """One Dirichlet draw per row of `alpha` (vectorised through Gamma draws)."""
    draws = rng.gamma(alpha)
    return draws / draws.sum(axis=1, keepdims=True)


def audience_draw(rng: np.random.Generator, n_users: int, mean_engagements: float) -> Audience:
    """Attributes, favourite topics (attribute-nudged), content-type mix and activity."""
    age = rng.choice(len(AGE_GROUPS), size=n_users, p=AGE_SHARE).astype(np.int8)
    country = rng.choice(len(COUNTRIES), size=n_users, p=COUNTRY_SHARE).astype(np.int8)
    plan = rng.choice(len(PLANS), size=n_users, p=PLAN_SHARE).astype(np.int8)
    logits = (
        np.log(TOPIC_SHARE)
        + _affinity(AGE_TOPIC_AFFINITY, AGE_GROUPS)[age]
        + _affinity(COUNTRY_TOPIC_AFFINITY, COUNTRIES)[country]
        + _affinity(PLAN_TOPIC_AFFINITY, PLANS)[plan]
    )
    gumbel = -np.log(-np.log(rng.random(logits.shape)))
    ranked = np.argsort(-(logits + gumbel), axis=1)[:, :3]  # weighted draw without replacement
    count = rng.choice(3, size=n_users, p=FAVOURITE_COUNT_SHARE) + 1
    used = np.arange(3) < count[:, None]
    weights = np.where(used, rng.gamma(TASTE_ALPHA, size=(n_users, 3)), 0.0)
    weights = -np.sort(-weights, axis=1)  # the most attribute-aligned topic weighs most
    weights /= weights.sum(axis=1, keepdims=True)
    favourites = np.where(used, ranked, -1).astype(np.int16)
    alpha = TYPE_MIX_CONCENTRATION * BASE_TYPE_MIX * AGE_TYPE_FACTOR[age] * PLAN_TYPE_FACTOR[plan]
    type_mix = _dirichlet_rows(rng, alpha)
    activity = rng.lognormal(-(ACTIVITY_SIGMA**2) / 2, ACTIVITY_SIGMA, size=n_users)
    activity *= PLAN_ACTIVITY[plan] / (PLAN_ACTIVITY @ PLAN_SHARE)
    return Audience(
        age,
        country,
        plan,
        favourites,
        weights.astype(np.float32),
        type_mix.astype(np.float32),
        mean_engagements * activity,
    )
