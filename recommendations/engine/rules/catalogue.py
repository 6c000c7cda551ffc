"""Compiling rules against the item table: the catalogue, and each rule's mask over it."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..conditions import conditions_mask
from ..errors import EngineError
from .model import Rule


@dataclass(frozen=True)
class Catalogue:
    """The item table as the rules see it: ids, availability and first category by position."""

    ids: np.ndarray  # item id by position
    index: pd.Index  # item id -> position, for many candidates at once
    positions: dict[Hashable, int]  # the same, for a few (the online path)
    available: np.ndarray
    category: np.ndarray  # code of the item's first category, -1 for none
    n_categories: int


@dataclass(frozen=True)
class RuleStage:
    """One stage's rules by priority, their masks stacked: column j is rule j's mask."""

    rules: tuple[Rule, ...]
    masks: np.ndarray  # (n_items, n_rules) bool


def build_catalogue(items: pd.DataFrame, *, needs_categories: bool) -> Catalogue:
    """The catalogue of `items` (item_id, available, and categories when rules cap by them)."""
    required = {"item_id", "available"} | ({"categories"} if needs_categories else set())
    missing = required - set(items.columns)
    if missing:
        raise EngineError(f"items lack the columns {', '.join(sorted(missing))}")
    index = pd.Index(items["item_id"])
    if pd.api.types.is_integer_dtype(index.dtype):
        index = index.astype(np.int64)  # candidates' ids are int64: no cast per lookup
    if not index.is_unique:
        raise EngineError("items: item_id must be unique")
    available = items["available"].fillna(False).to_numpy(dtype=bool)
    category, n_categories = np.full(len(items), -1), 0
    if "categories" in items.columns:
        category, uniques = pd.factorize(items["categories"].map(_first_category))
        n_categories = len(uniques)
    positions = {item: position for position, item in enumerate(index.tolist())}
    return Catalogue(
        index.to_numpy(), index, positions, available, np.asarray(category, np.int64), n_categories
    )


def _first_category(value: Any) -> Any:
    if isinstance(value, list | tuple | np.ndarray):
        return value[0] if len(value) else None
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else value


def rule_mask(rule: Rule, items: pd.DataFrame, now: pd.Timestamp) -> np.ndarray:
    """Per item: does the rule act on it (for include_only: does it remove it)?"""
    try:
        mask = conditions_mask(items, rule.conditions)
    except EngineError as error:
        raise EngineError(f"rule {rule.name!r}: conditions: {error}") from None
    if rule.kind == "freshness_boost":
        mask &= _fresh(items, now, rule)
    return ~mask if rule.kind == "include_only" else mask


def _fresh(items: pd.DataFrame, now: pd.Timestamp, rule: Rule) -> np.ndarray:
    """Published within `days` before `now`; not yet published or undated items are not."""
    if "published_at" not in items.columns:
        raise EngineError(f"rule {rule.name!r}: items lack the column published_at")
    published = pd.to_datetime(items["published_at"], utc=True, errors="coerce")
    window = (published >= now - pd.Timedelta(days=rule.days)) & (published <= now)
    return window.fillna(False).to_numpy(dtype=bool)
