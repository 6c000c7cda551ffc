"""A marketer rule and its validation, and what applying rules returns."""

from __future__ import annotations

import datetime as dt
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..conditions import Condition
from ..errors import EngineError

FILTERS = ("exclude", "include_only", "exclude_consumed", "exclude_recently_sent")
MULTIPLIERS = ("boost", "bury", "freshness_boost")
KINDS = (*FILTERS, *MULTIPLIERS, "pin", "cap_per_category")
# Which kinds use which optional field; any other kind must leave it empty.
FIELD_KINDS = {
    "multiplier": MULTIPLIERS,
    "item_id": ("pin",),
    "position": ("pin",),
    "cap": ("cap_per_category",),
    "days": ("freshness_boost", "exclude_recently_sent"),
}
Moment = dt.datetime | pd.Timestamp | str


@dataclass(frozen=True)
class Rule:
    """One marketer rule; see the package docstring for how each kind behaves."""

    id: Hashable
    name: str
    kind: str
    conditions: tuple[Condition, ...] = ()
    multiplier: float | None = None
    item_id: Hashable | None = None
    position: int | None = None
    cap: int | None = None
    days: int | None = None
    priority: int = 100
    segment: Hashable | None = None
    starts_at: Moment | None = None
    ends_at: Moment | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "conditions", tuple(self.conditions))
        _rule_check(self)

    def active_at(self, now: Moment) -> bool:
        moment = to_utc(now)
        starts, ends = to_utc(self.starts_at), to_utc(self.ends_at)
        return (starts is None or starts <= moment) and (ends is None or moment < ends)

    def effect(self) -> str:
        """How the rule changes a score, as the preview shows it."""
        verb = {"boost": "boosted", "bury": "buried", "freshness_boost": "boosted (fresh)"}
        return f"{verb[self.kind]} ×{self.multiplier:g} by {self.name}"


@dataclass(frozen=True)
class RuleResult:
    """`lists`: user_id, item_id, score, rank, source, because_item_id, rules (what changed the
    item); `trace`: user_id, item_id, rule, effect (every change, removals included)."""

    lists: pd.DataFrame
    trace: pd.DataFrame


def _rule_check(rule: Rule) -> None:
    def fail(field_name: str, problem: str) -> None:
        raise EngineError(f"rule {rule.name!r}: {field_name} {problem}")

    if rule.kind not in KINDS:
        fail("kind", f"must be one of {', '.join(KINDS)} (got {rule.kind!r})")
    for name, kinds in FIELD_KINDS.items():
        if getattr(rule, name) is not None and rule.kind not in kinds:
            fail(name, f"is only used by {', '.join(kinds)}, not {rule.kind}")
    if not all(isinstance(c, Condition) for c in rule.conditions):
        fail("conditions", "must be Condition objects")
    if not is_integer(rule.priority):
        fail("priority", f"must be a whole number (got {rule.priority!r})")
    starts, ends = to_utc(rule.starts_at), to_utc(rule.ends_at)
    if starts is not None and ends is not None and ends <= starts:
        fail("ends_at", f"must come after starts_at ({rule.starts_at} .. {rule.ends_at})")
    _kind_check(rule, fail)


def _kind_check(rule: Rule, fail: Any) -> None:
    """The fields each kind needs, and their ranges."""
    kind, m = rule.kind, rule.multiplier
    if kind in ("boost", "freshness_boost") and not (_is_number(m) and m > 1):
        fail("multiplier", f"must be above 1 for {kind} (got {m!r})")
    if kind == "bury" and not (_is_number(m) and 0 < m < 1):
        fail("multiplier", f"must be between 0 and 1 for bury (got {m!r})")
    if kind == "pin" and rule.item_id is None:
        fail("item_id", "is required for pin")
    if kind == "pin" and not (is_integer(rule.position) and rule.position >= 1):
        fail("position", f"must be 1 or more for pin (got {rule.position!r})")
    if kind == "cap_per_category" and not (is_integer(rule.cap) and rule.cap >= 1):
        fail("cap", f"must be 1 or more for cap_per_category (got {rule.cap!r})")
    required = kind == "freshness_boost"
    if (required or rule.days is not None) and not (is_integer(rule.days) and rule.days >= 1):
        fail("days", f"must be 1 or more for {kind} (got {rule.days!r})")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.number) and not isinstance(value, bool)


def is_integer(value: Any) -> bool:
    """A Python or NumPy integer, not a bool."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def to_utc(value: Moment | None) -> pd.Timestamp | None:
    """The moment as a UTC Timestamp (naive ones taken as UTC); None stays None."""
    if value is None:
        return None
    moment = pd.Timestamp(value)
    return moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")
