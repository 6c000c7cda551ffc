"""Personalize-style CSV folders as engine frames, and the derived item features both the
benchmarks and the service use, so an offline figure and a trained model see the same data."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .errors import EngineError

DECADE_SOURCE_COLUMNS = ("year", "release_year")


def item_features_derive(items: pd.DataFrame) -> pd.DataFrame:
    """Add categorical features a content model can use: a release year becomes its decade.

    The year itself is made numeric (odd values become missing), so that it is not taken
    for a category of its own.
    """
    items = items.copy()
    for column in DECADE_SOURCE_COLUMNS:
        if column in items.columns:
            year = pd.to_numeric(items[column], errors="coerce")
            items[column] = year
            if "decade" not in items.columns:
                decade = (year // 10 * 10).astype("Int64").astype(str)
                items["decade"] = decade.where(year.notna(), None)
    return items


def read_personalize_csvs(
    directory: str | Path,
) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None]:
    """interactions.csv (required), items.csv and users.csv with lower-case column names."""
    directory = Path(directory)
    path = directory / "interactions.csv"
    if not path.exists():
        raise EngineError(f"no interactions.csv in {directory}")

    def read(name: str) -> pd.DataFrame | None:
        file = directory / name
        if not file.exists():
            return None
        return pd.read_csv(file, dtype={"USER_ID": str, "ITEM_ID": str}).rename(columns=str.lower)

    interactions, items, users = read("interactions.csv"), read("items.csv"), read("users.csv")
    if items is not None:
        items = item_features_derive(items)
    return interactions, items, users
