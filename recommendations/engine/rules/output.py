"""The DataFrames a run returns: the lists and the trace."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .run import FinalRows

LIST_COLUMNS = ["user_id", "item_id", "score", "rank", "source", "because_item_id", "rules"]
TRACE_COLUMNS = ["user_id", "item_id", "rule", "effect"]


def optional_column(frame: pd.DataFrame, name: str) -> np.ndarray | None:
    """The column as objects, or None when the frame has none of that name."""
    return frame[name].to_numpy(dtype=object) if name in frame.columns else None


def candidate_values(
    values: Sequence[Any] | np.ndarray | None, row: np.ndarray, fill: Any
) -> np.ndarray:
    """Candidates' values for rows taken from them; `fill` for pinned items that were not."""
    picked = np.full(len(row), fill, dtype=object)
    present = row >= 0
    picked[present] = None if values is None else np.asarray(values, dtype=object)[row[present]]
    return picked


def lists_frame(
    users: np.ndarray, final: FinalRows, items: np.ndarray, source: np.ndarray, because: np.ndarray
) -> pd.DataFrame:
    """The `lists` DataFrame (LIST_COLUMNS) of a run's final rows."""
    return pd.DataFrame(
        {
            "user_id": users,
            "item_id": items,
            "score": final.score.astype(float),
            "rank": final.rank.astype(np.int64),
            "source": _objects(source),
            "because_item_id": _objects(because),
            "rules": _objects(final.labels),
        }
    )


def _objects(values: np.ndarray) -> pd.Series:
    """Kept as Python objects (None stays None), whatever the values happen to be."""
    return pd.Series(values, dtype=object)


def trace_frame(events: list[tuple], users: np.ndarray) -> pd.DataFrame:
    """The events of a run as rows, by user (each user's in pipeline order)."""
    if not events:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in TRACE_COLUMNS})
    codes = np.concatenate([event[0] for event in events])
    sizes = [len(event[0]) for event in events]
    order = np.argsort(codes, kind="stable")
    frame = pd.DataFrame(
        {
            "user_id": users[codes],
            "item_id": np.concatenate([np.asarray(e[1], dtype=object) for e in events]),
            "rule": _objects(np.repeat(np.array([e[2] for e in events], dtype=object), sizes)),
            "effect": np.repeat(np.array([e[3] for e in events], dtype=object), sizes),
        }
    )
    return frame.iloc[order].reset_index(drop=True)
