"""Validation and normalisation of the input DataFrames (interactions, items, users)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from .errors import EngineError

INTERACTION_COLUMNS = ("user_id", "item_id", "timestamp")


def _lower_columns(df: pd.DataFrame) -> pd.DataFrame:
    # Personalize CSVs use USER_ID, ITEM_ID, ...; the engine speaks lowercase.
    return df.rename(columns={c: str(c).lower() for c in df.columns})


def require_columns(df: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        got = ", ".join(map(str, df.columns))
        raise EngineError(f"{what} is missing column(s) {', '.join(missing)}; got {got}")


def to_seconds(values: pd.Series) -> np.ndarray:
    """Timestamps (unix seconds, datetimes or date strings) as float unix seconds."""
    if pd.api.types.is_bool_dtype(values):
        raise EngineError("timestamp must be numbers (unix seconds) or datetimes")
    if pd.api.types.is_numeric_dtype(values):
        out = values.to_numpy(dtype=float)
    else:
        try:
            dt = pd.to_datetime(values, utc=True)
        except (ValueError, TypeError) as exc:
            raise EngineError(f"cannot parse timestamp values: {exc}") from exc
        out = (dt - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype=float)
    if np.isnan(out).any():
        raise EngineError("timestamp has missing values")
    return out


def interactions_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Checked copy with lowercase columns, float `timestamp` seconds and no missing ids."""
    if not isinstance(df, pd.DataFrame):
        raise EngineError("interactions must be a pandas DataFrame")
    if df.empty:
        raise EngineError("interactions is empty")
    df = _lower_columns(df)
    require_columns(df, INTERACTION_COLUMNS, "interactions")
    if df["user_id"].isna().any() or df["item_id"].isna().any():
        raise EngineError("interactions has missing user_id or item_id values")
    out = df.copy(deep=False)  # copy-on-write: the caller's frame is never modified
    out["timestamp"] = to_seconds(out["timestamp"])
    if "event_value" in out.columns:
        out["event_value"] = pd.to_numeric(out["event_value"], errors="coerce")
    return out


def entity_frame(df: pd.DataFrame | None, id_column: str, what: str) -> pd.DataFrame | None:
    """Checked items/users frame (lowercase columns, one row per id) or None."""
    if df is None:
        return None
    if not isinstance(df, pd.DataFrame):
        raise EngineError(f"{what} must be a pandas DataFrame or None")
    df = _lower_columns(df)
    require_columns(df, [id_column], what)
    if df[id_column].isna().any():
        raise EngineError(f"{what} has missing {id_column} values")
    return df.drop_duplicates(id_column, keep="last").reset_index(drop=True)


def check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise EngineError(f"k must be an integer >= 1, got {k!r}")
    return int(k)
