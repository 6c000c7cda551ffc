"""Small synthetic data with planted tastes: users of taste A consume category-A items, etc."""

from __future__ import annotations

import numpy as np
import pandas as pd

WORDS = {"A": "space rocket galaxy", "B": "cooking recipe kitchen", "C": "football match goal"}
N_ITEMS_PER_CATEGORY = 20
N_USERS_PER_TASTE = 15


def planted_data(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    items = pd.DataFrame(
        [
            {
                "item_id": f"{cat}{i}",
                "title": f"{WORDS[cat]} story {i}",
                "description": f"all about {WORDS[cat]}",
                "categories": [cat.lower()],
                "tags": f"t{cat}|x",
            }
            for cat in WORDS
            for i in range(N_ITEMS_PER_CATEGORY)
        ]
    )
    rows, users = [], []
    user = 0
    for cat in WORDS:
        for _ in range(N_USERS_PER_TASTE):
            # Popular items of the category (low numbers) are consumed more often.
            p = 1.0 / np.arange(1, N_ITEMS_PER_CATEGORY + 1)
            chosen = rng.choice(N_ITEMS_PER_CATEGORY, 8, replace=False, p=p / p.sum())
            for n, i in enumerate(chosen):
                rows.append(
                    {
                        "user_id": user,
                        "item_id": f"{cat}{i}",
                        "timestamp": 1_000_000 + n * 60,
                        "event_type": "view",
                        "event_value": 1.0,
                    }
                )
            users.append({"user_id": user, "segment": cat, "age": 20 + user % 40})
            user += 1
    return pd.DataFrame(rows), items, pd.DataFrame(users)


def category(item_id: str) -> str:
    return item_id[0]
