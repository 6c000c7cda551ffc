"""Contradictions between rules, for the admin form."""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from ..conditions import Condition, conditions_mask
from .model import Rule, to_utc

SCALAR_ITEM_FIELDS = ("item_id", "title", "price", "available", "published_at")


def rules_conflicts(rules: Iterable[Rule], items: pd.DataFrame | None = None) -> list[str]:
    """Contradictions certain to hold, for the admin form: an empty list when none is found.
    With `items`, conditions on any column can be checked against the pinned items."""
    ordered = sorted(rules, key=lambda rule: rule.priority)
    problems = [f"{rule.name!r} excludes every item" for rule in ordered if _excludes_all(rule)]
    for rule in _of(ordered, "include_only"):
        if _never_both(rule, rule, items):
            problems.append(f"{rule.name!r} has conditions no item can meet at once")
    for a, b in itertools.combinations(ordered, 2):
        if _overlap(a, b):
            problems += _both_conflicts(a, b, items)
            problems += _one_way_conflicts(a, b, items) + _one_way_conflicts(b, a, items)
    return problems


def _of(rules: Iterable[Rule], kind: str) -> list[Rule]:
    return [rule for rule in rules if rule.kind == kind]


def _excludes_all(rule: Rule) -> bool:
    return rule.kind == "exclude" and not rule.conditions


def _overlap(a: Rule, b: Rule) -> bool:
    """Can both rules apply to the same user at the same time?"""
    if a.segment is not None and b.segment is not None and a.segment != b.segment:
        return False
    starts = [m for m in (to_utc(a.starts_at), to_utc(b.starts_at)) if m is not None]
    ends = [m for m in (to_utc(a.ends_at), to_utc(b.ends_at)) if m is not None]
    return not starts or not ends or max(starts) < min(ends)


def _both_conflicts(a: Rule, b: Rule, items: pd.DataFrame | None) -> list[str]:
    if a.kind == b.kind == "include_only" and _never_both(a, b, items):
        return [f"{a.name!r} and {b.name!r} include only items no item can be at once"]
    if a.kind == b.kind == "pin" and (a.position, a.priority) == (b.position, b.priority):
        return [
            f"{a.name!r} and {b.name!r} pin position {a.position} with the same priority "
            f"{a.priority}: give one a lower number to decide which wins"
        ]
    return []


def _one_way_conflicts(a: Rule, b: Rule, items: pd.DataFrame | None) -> list[str]:
    if a.kind == "include_only" and b.kind == "exclude" and _same_conditions(a, b):
        return [f"{a.name!r} includes only the items {b.name!r} excludes: lists are always empty"]
    if a.kind == "pin" and b.kind in ("exclude", "include_only"):
        if _removes_item(b, a.item_id, items):
            return [f"{a.name!r} pins item {a.item_id!r}, which {b.name!r} removes"]
    return []


def _condition_key(condition: Condition) -> tuple:
    value = condition.value
    if isinstance(value, list | tuple | set | np.ndarray):
        value = tuple(sorted(map(_norm, value), key=repr))
    else:
        value = _norm(value)
    return condition.column, condition.operator, value


def _norm(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _same_conditions(a: Rule, b: Rule) -> bool:
    return {_condition_key(c) for c in a.conditions} == {_condition_key(c) for c in b.conditions}


def _never_both(a: Rule, b: Rule, items: pd.DataFrame | None) -> bool:
    """Do `a` and `b` (include_only, may be one rule) ask one single-valued field for values
    that cannot match at once (equals / in, all text or all numbers)?"""
    allowed: dict[str, list[set]] = {}
    for condition in (*a.conditions, *b.conditions):
        values = _value_set(condition)
        if values is not None and _single_valued(condition.column, items):
            allowed.setdefault(condition.column, []).append(values)
    for sets in allowed.values():
        kinds = {type(value) for values in sets for value in values}
        if len(kinds) == 1 and not set.intersection(*sets):
            return True
    return False


def _value_set(condition: Condition) -> set | None:
    """The values an equals / in condition accepts, normalized, or None when unsure."""
    if condition.operator not in ("equals", "in"):
        return None
    values = [condition.value] if condition.operator == "equals" else list(condition.value)
    normalized = set()
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return None
        if isinstance(value, str):
            try:
                float(value)
            except ValueError:
                normalized.add(value.lower())
                continue
            return None  # text that reads as a number also matches numbers
        normalized.add(float(value))
    return normalized


def _single_valued(column: str, items: pd.DataFrame | None) -> bool:
    if items is None or column not in items.columns:
        return column in SCALAR_ITEM_FIELDS
    return not items[column].map(lambda v: isinstance(v, list | tuple | set | np.ndarray)).any()


def _removes_item(rule: Rule, item_id: Hashable, items: pd.DataFrame | None) -> bool:
    """Does the exclude / include_only rule certainly remove the item?"""
    if items is not None and "item_id" in items.columns:
        row = items[items["item_id"] == item_id]
    elif all(condition.column == "item_id" for condition in rule.conditions):
        row = pd.DataFrame({"item_id": [item_id]})
    else:
        return False
    if len(row) != 1:
        return False
    matches = bool(conditions_mask(row, rule.conditions)[0])
    return matches if rule.kind == "exclude" else not matches
