"""Named parameter sets shared by the benchmarks, `evaluate` and training."""

# The popularity baseline every evaluation reports beside the hybrid, on the same split.
POPULARITY_PARAMS = {
    "cf_algorithm": "none",
    "content_weight": 0.0,
    "popularity_weight": 1.0,
    "popularity_half_life_days": None,
    "value_power": 0.0,
}

# What a hyperparameter search tries by default (on a validation split of the train part).
SEARCH_GRID = {
    "ease_l2": [300.0, 500.0],
    "value_power": [0.0, 0.3, 0.6],
    "item_feature_weight": [2.0, 4.0],
}
