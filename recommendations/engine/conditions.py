"""Conditions on a table's columns, evaluated for every row at once.

Marketer rules use them on items (category, tag, price, attributes, ...) and segments on users
(recency, frequency, attributes). A condition names a column, an operator and a value; a
list-valued column (categories, tags) matches when any of its values does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .errors import EngineError

OPERATORS = ("equals", "not_equals", "in", "contains", "lt", "gt", "between")
ORDERED_OPERATORS = ("lt", "gt", "between")


@dataclass(frozen=True)
class Condition:
    """`column operator value`, e.g. Condition("categories", "in", ("Cooking", "Travel"))."""

    column: str
    operator: str
    value: Any

    def __post_init__(self) -> None:
        if self.operator not in OPERATORS:
            raise EngineError(
                f"{self.column}: unknown operator {self.operator!r} (use one of {OPERATORS})"
            )
        if self.operator == "in" and not _is_sequence(self.value):
            raise EngineError(f"{self.column} in: the value must be a list")
        if self.operator == "between":
            if not _is_sequence(self.value) or len(self.value) != 2:
                raise EngineError(f"{self.column} between: the value must be [low, high]")
            low, high = self.value
            if _comparable(low) > _comparable(high):
                raise EngineError(f"{self.column} between: low {low!r} is above high {high!r}")

    def __str__(self) -> str:
        return f"{self.column} {self.operator} {self.value!r}"


def condition_mask(table: pd.DataFrame, condition: Condition) -> np.ndarray:
    """A boolean per row of `table`: does the row meet the condition? Missing values never do."""
    if condition.column not in table.columns:
        known = ", ".join(map(str, table.columns))
        raise EngineError(f"unknown field {condition.column!r} (known: {known})")
    column = table[condition.column]
    if column.map(lambda value: isinstance(value, list | tuple | set)).any():
        return _list_mask(column, condition)
    return _scalar_mask(column, condition)


def conditions_mask(table: pd.DataFrame, conditions: Sequence[Condition]) -> np.ndarray:
    """Rows meeting every condition (all rows when there are none)."""
    mask = np.ones(len(table), dtype=bool)
    for condition in conditions:
        mask &= condition_mask(table, condition)
    return mask


def _list_mask(column: pd.Series, condition: Condition) -> np.ndarray:
    """Any value of the row's list meets the condition (for not_equals: none equals it)."""
    exploded = column.map(lambda value: list(value) if _is_sequence(value) else [value])
    flat = exploded.explode()
    if condition.operator == "not_equals":
        equal = _scalar_mask(flat, Condition(condition.column, "equals", condition.value))
        return ~pd.Series(equal, index=flat.index).groupby(level=0).any().to_numpy()
    hits = pd.Series(_scalar_mask(flat, condition), index=flat.index)
    return hits.groupby(level=0).any().reindex(column.index, fill_value=False).to_numpy()


def _scalar_mask(column: pd.Series, condition: Condition) -> np.ndarray:
    operator, value = condition.operator, condition.value
    present = column.notna().to_numpy()
    if operator == "equals":
        return present & _equal(column, value)
    if operator == "not_equals":
        return present & ~_equal(column, value)
    if operator == "in":
        hits = np.zeros(len(column), dtype=bool)
        for item in value:
            hits |= _equal(column, item)
        return present & hits
    if operator == "contains":
        text = column.astype(str).str.lower()
        return present & text.str.contains(str(value).lower(), regex=False).to_numpy()
    bounds = value if operator == "between" else [value]
    ordered = _ordered(column, numeric=all(_is_number(bound) for bound in bounds))
    if operator == "lt":
        return present & (ordered < _comparable(value)).fillna(False).to_numpy(dtype=bool)
    if operator == "gt":
        return present & (ordered > _comparable(value)).fillna(False).to_numpy(dtype=bool)
    low, high = (_comparable(bound) for bound in value)
    return present & ordered.between(low, high).fillna(False).to_numpy(dtype=bool)


def _equal(column: pd.Series, value: Any) -> np.ndarray:
    """Equality that ignores case for text and compares numbers as numbers."""
    if isinstance(value, bool) or pd.api.types.is_bool_dtype(column):
        return (column == value).to_numpy(dtype=bool)
    if isinstance(value, int | float):
        return (pd.to_numeric(column, errors="coerce") == value).fillna(False).to_numpy(bool)
    return (column.astype(str).str.lower() == str(value).lower()).to_numpy(dtype=bool)


def _ordered(column: pd.Series, *, numeric: bool) -> pd.Series:
    """The column as numbers to compare with the bound: datetimes (and, against a date bound,
    date text) as unix seconds; otherwise numbers, text that is not a number being missing."""
    if pd.api.types.is_datetime64_any_dtype(column):
        return (column - pd.Timestamp(0, tz=column.dt.tz)).dt.total_seconds()
    if numeric:
        return pd.to_numeric(column, errors="coerce").astype(float)
    moments = pd.to_datetime(column, utc=True, errors="coerce", format="mixed")
    return (moments - pd.Timestamp(0, tz="UTC")).dt.total_seconds()


def _comparable(value: Any) -> float:
    """A bound as a number: numbers as they are, dates and datetimes as unix seconds."""
    if isinstance(value, bool):
        raise EngineError(f"{value!r} cannot be compared with < or >")
    if isinstance(value, int | float | np.number):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        pass
    moment = pd.to_datetime(value, utc=True, errors="coerce")
    if pd.isna(moment):
        raise EngineError(f"{value!r} is neither a number nor a date")
    return (moment - pd.Timestamp(0, tz="UTC")).total_seconds()


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _is_sequence(value: Any) -> bool:
    return isinstance(value, list | tuple | set | np.ndarray)
