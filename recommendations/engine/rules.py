"""Marketer rules over recommendation candidates, vectorized, for every user at once.

`RulePipeline.compile(rules, items, now)` turns each active `Rule` into a boolean mask over the
item table, once; applying them is then array indexing over candidate rows, with no loop over
users: `apply(candidates, k)` for DataFrames of many users (the batch path, the preview with
`trace=True`), `apply_user(user_id, item_ids, scores, k)` for one user's arrays (the online
path, a fraction of a millisecond). Both run the same code and give the same lists. The order:

1. filter: items unknown to the table or unavailable (built in), then exclude, include_only,
   exclude_consumed and exclude_recently_sent rules;
2. score: boost, bury and freshness_boost multiply the score of the items they match;
3. rerank by score (ties keep the candidates' order; NaN scores sink);
4. diversify: each cap_per_category rule keeps a user's best `cap` items per first category;
5. pins put their item at their position, then every list is cut to k and ranked from 1.

Decisions at the edges:
- A multiplier lowers a negative score by dividing it (score / m) and raises it by multiplying,
  so a boost always moves an item up and a bury down; a zero score stays zero.
- A removed candidate is reported once, for the first filter that removes it (built-ins first,
  then rules by priority).
- Rule conditions narrow what a rule touches: for exclude_consumed / exclude_recently_sent only
  the consumed / sent items matching them are removed; for cap_per_category only matching items
  are counted and capped; a pin is applied only when its item matches them. Items without a
  category are never capped.
- A pin applies to users that have at least one candidate left after filtering (a user with none
  gets an empty list, and the caller falls back). Its item is shown even if it was not a
  candidate, as long as the table knows it, it is available and no filter removes it for this
  user; it is not repeated elsewhere, and pins win over caps. Pins are placed by priority: a pin
  whose position is taken goes to the next free one; one that finds no free position up to k, or
  whose item an earlier pin already placed, is reported as not applied. When the list is shorter
  than the position, the pinned item closes the list.
- A pinned item takes the score of the item above it (the top score at position 1), so scores
  never increase down a list; `rank` is the order to trust.
- `exclude_recently_sent` uses the `recently_sent` map as given: its `days` (how many bulletins
  back) is for the caller that builds the map.
- A rule with a `segment` applies only to the users `segments[segment]` lists.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .conditions import Condition, conditions_mask
from .errors import EngineError

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
LIST_COLUMNS = ["user_id", "item_id", "score", "rank", "source", "because_item_id", "rules"]
TRACE_COLUMNS = ["user_id", "item_id", "rule", "effect"]
SCALAR_ITEM_FIELDS = ("item_id", "title", "price", "available", "published_at")
UNKNOWN, UNAVAILABLE = -3, -2  # filter reasons that are not rules (rules use their index)
KEPT = -1
Moment = dt.datetime | pd.Timestamp | str


@dataclass(frozen=True)
class Rule:
    """One marketer rule; see the module docstring for how each kind behaves."""

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
        moment = _utc(now)
        starts, ends = _utc(self.starts_at), _utc(self.ends_at)
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
    if not _is_int(rule.priority):
        fail("priority", f"must be a whole number (got {rule.priority!r})")
    starts, ends = _utc(rule.starts_at), _utc(rule.ends_at)
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
    if kind == "pin" and not (_is_int(rule.position) and rule.position >= 1):
        fail("position", f"must be 1 or more for pin (got {rule.position!r})")
    if kind == "cap_per_category" and not (_is_int(rule.cap) and rule.cap >= 1):
        fail("cap", f"must be 1 or more for cap_per_category (got {rule.cap!r})")
    required = kind == "freshness_boost"
    if (required or rule.days is not None) and not (_is_int(rule.days) and rule.days >= 1):
        fail("days", f"must be 1 or more for {kind} (got {rule.days!r})")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.number) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _utc(value: Moment | None) -> pd.Timestamp | None:
    if value is None:
        return None
    moment = pd.Timestamp(value)
    return moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")


# --- compile -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Catalogue:
    ids: np.ndarray  # item id by position
    index: pd.Index  # item id -> position, for many candidates at once
    positions: dict[Hashable, int]  # the same, for a few (the online path)
    available: np.ndarray
    category: np.ndarray  # code of the item's first category, -1 for none
    n_categories: int


@dataclass(frozen=True)
class _Stage:
    """One stage's rules by priority, their masks stacked: column j is rule j's mask."""

    rules: tuple[Rule, ...]
    masks: np.ndarray  # (n_items, n_rules) bool


@dataclass(frozen=True)
class RulePipeline:
    """Rules compiled against one item table; `apply` (many users) and `apply_user` (one user,
    the online path) run them on candidates. Compile again when the rules or the items change."""

    catalogue: _Catalogue
    filters: _Stage  # column true: the rule removes the item (for consumed/sent: if paired)
    multipliers: _Stage
    factors: np.ndarray  # the multipliers' multipliers
    caps: _Stage
    pins: _Stage  # column true: the pin's conditions hold for the item
    pin_items: np.ndarray  # each pin's item position, -1 when the table does not know it
    inactive: tuple[Rule, ...] = ()

    @classmethod
    def compile(
        cls, rules: Iterable[Rule], items: pd.DataFrame, now: Moment | None = None
    ) -> RulePipeline:
        """Keep the rules active at `now` (default: the current time), by priority, and
        precompute their masks over `items` (item_id, available, categories, published_at, ...)."""
        moment = _utc(now) or pd.Timestamp.now(tz="UTC")
        ordered = sorted(rules, key=lambda rule: rule.priority)  # stable: ties keep input order
        active = [rule for rule in ordered if rule.active_at(moment)]
        capping = any(rule.kind == "cap_per_category" for rule in active)
        catalogue = _catalogue(items, needs_categories=capping)

        def stage(kinds: Sequence[str]) -> _Stage:
            chosen = tuple(rule for rule in active if rule.kind in kinds)
            masks = [_rule_mask(rule, items, moment) for rule in chosen]
            stacked = np.stack(masks, axis=1) if masks else np.zeros((len(items), 0), bool)
            return _Stage(chosen, stacked)

        pins = stage(("pin",))
        return cls(
            catalogue=catalogue,
            filters=stage(FILTERS),
            multipliers=(multipliers := stage(MULTIPLIERS)),
            factors=np.array([rule.multiplier for rule in multipliers.rules], dtype=float),
            caps=stage(("cap_per_category",)),
            pins=pins,
            pin_items=np.array([catalogue.positions.get(r.item_id, -1) for r in pins.rules], int),
            inactive=tuple(rule for rule in ordered if not rule.active_at(moment)),
        )

    @property
    def rules(self) -> list[Rule]:
        """The active rules, by priority."""
        stages = (self.filters, self.multipliers, self.caps, self.pins)
        return sorted((rule for s in stages for rule in s.rules), key=lambda r: r.priority)

    def apply(
        self,
        candidates: pd.DataFrame,
        k: int,
        *,
        consumed: Mapping[Hashable, Collection[Hashable]] | None = None,
        recently_sent: Mapping[Hashable, Collection[Hashable]] | None = None,
        segments: Mapping[Hashable, Collection[Hashable]] | None = None,
        trace: bool = False,
    ) -> RuleResult:
        """The batch path. `candidates`: user_id, item_id, score, optionally source and
        because_item_id. `consumed` and `recently_sent` map a user to item ids, `segments` a
        segment to its user ids. The trace is built only with `trace=True` (it costs time)."""
        _check_k(k)
        missing = {"user_id", "item_id", "score"} - set(candidates.columns)
        if missing:
            raise EngineError(f"candidates lack the columns {', '.join(sorted(missing))}")
        codes, users = pd.factorize(candidates["user_id"])
        audience = _Audience(users, self.catalogue, consumed, recently_sent, segments)
        item_ids = candidates["item_id"].to_numpy()
        run = _Run(
            self,
            audience,
            np.asarray(codes, dtype=np.int64),
            self.catalogue.index.get_indexer(item_ids),
            candidates["score"].to_numpy(dtype=float, na_value=np.nan),
            item_ids,
            k,
            trace,
        )
        final = run.run()
        row = final.row
        labels = users.to_numpy()
        lists = _lists_frame(
            labels[final.user],
            final,
            self.catalogue.ids[final.item],
            _pick(_optional(candidates, "source"), row, "pinned"),
            _pick(_optional(candidates, "because_item_id"), row, None),
        )
        return RuleResult(lists, _trace_frame(run.events, labels))

    def apply_user(
        self,
        user_id: Hashable,
        item_ids: Sequence[Hashable] | np.ndarray,
        scores: Sequence[float] | np.ndarray,
        k: int,
        *,
        sources: Sequence[Any] | None = None,
        because: Sequence[Any] | None = None,
        consumed: Collection[Hashable] = (),
        recently_sent: Collection[Hashable] = (),
        segments: Collection[Hashable] = (),
        trace: bool = False,
    ) -> UserList:
        """The online path: one user's candidates as arrays, no DataFrame on the way. Here
        `consumed` and `recently_sent` are this user's item ids, `segments` this user's
        segments. Same results as `apply` on the same input."""
        _check_k(k)
        if len(item_ids) != len(scores):
            raise EngineError(f"{len(item_ids)} item ids but {len(scores)} scores")
        ids = item_ids.tolist() if isinstance(item_ids, np.ndarray) else list(item_ids)
        lookup = self.catalogue.positions.get
        positions = np.fromiter((lookup(i, -1) for i in ids), dtype=np.int64, count=len(ids))
        one = _OneUser(self.catalogue, consumed, recently_sent, segments)
        user = np.zeros(len(ids), dtype=np.int64)
        score = np.asarray(scores, dtype=float)
        run = _Run(self, one, user, positions, score, np.array(ids, dtype=object), k, trace)
        final = run.run()
        return UserList(
            user_id=user_id,
            item_id=self.catalogue.ids[final.item],
            score=final.score,
            source=_pick(sources, final.row, "pinned"),
            because_item_id=_pick(because, final.row, None),
            rules=final.labels,
            events=tuple(run.events),
        )


@dataclass(frozen=True)
class UserList:
    """One user's list from the online path, best first (rank i + 1 at index i)."""

    user_id: Hashable
    item_id: np.ndarray
    score: np.ndarray
    source: np.ndarray
    because_item_id: np.ndarray
    rules: np.ndarray  # tuples of effects, as in RuleResult.lists
    events: tuple = ()  # the trace, as _Run records it

    def frames(self) -> RuleResult:
        """The same DataFrames `apply` returns."""
        n = len(self.item_id)
        final = _Final(
            np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64),
            np.zeros(n, np.int64), np.arange(1, n + 1), self.score, self.rules,
        )  # fmt: skip
        users = np.full(n, self.user_id, dtype=object)
        lists = _lists_frame(users, final, self.item_id, self.source, self.because_item_id)
        return RuleResult(lists, _trace_frame(list(self.events), np.array([self.user_id])))


def _check_k(k: Any) -> None:
    if not _is_int(k) or k < 1:
        raise EngineError(f"k must be a whole number of 1 or more (got {k!r})")


def _catalogue(items: pd.DataFrame, *, needs_categories: bool) -> _Catalogue:
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
    return _Catalogue(
        index.to_numpy(), index, positions, available, np.asarray(category, np.int64), n_categories
    )


def _first_category(value: Any) -> Any:
    if isinstance(value, list | tuple | np.ndarray):
        return value[0] if len(value) else None
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else value


def _rule_mask(rule: Rule, items: pd.DataFrame, now: pd.Timestamp) -> np.ndarray:
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


# --- who the rules apply to ----------------------------------------------------------------


class _Audience:
    """The batch path's users (codes into `users`): segment membership and item maps."""

    def __init__(
        self,
        users: pd.Index,
        catalogue: _Catalogue,
        consumed: Mapping[Hashable, Collection[Hashable]] | None,
        recently_sent: Mapping[Hashable, Collection[Hashable]] | None,
        segments: Mapping[Hashable, Collection[Hashable]] | None,
    ) -> None:
        self.users, self.catalogue, self.segments = users, catalogue, segments or {}
        self.maps = {"exclude_consumed": consumed, "exclude_recently_sent": recently_sent}
        self._keys: dict[str, np.ndarray] = {}

    def applies(self, rules: Sequence[Rule]) -> np.ndarray:
        """(n_users, n_rules): is the user in the rule's segment (or has it none)?"""
        members = np.ones((len(self.users), len(rules)), dtype=bool)
        for j, rule in enumerate(rules):
            if rule.segment is not None:
                members[:, j] = self.users.isin(list(self.segments.get(rule.segment, ())))
        return members

    def pairs(self, kind: str, user: np.ndarray, item: np.ndarray) -> np.ndarray:
        """Is each (user code, item position) in the kind's map?"""
        if kind not in self._keys:
            self._keys[kind] = self._pair_keys(self.maps[kind] or {})
        return _member(user * len(self.catalogue.ids) + item, self._keys[kind])

    def _pair_keys(self, mapping: Mapping[Hashable, Collection[Hashable]]) -> np.ndarray:
        wanted = self.users.intersection(pd.Index(list(mapping)))
        if wanted.empty:
            return np.empty(0, dtype=np.int64)
        values = [mapping[user] for user in wanted]
        counts = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
        flat = list(itertools.chain.from_iterable(values))
        items = self.catalogue.index.get_indexer(flat) if flat else np.empty(0, np.int64)
        keys = np.repeat(self.users.get_indexer(wanted), counts) * len(self.catalogue.ids)
        return np.unique((keys + items)[items >= 0])


class _OneUser:
    """The online path's one user (code 0): their segments and item sets."""

    def __init__(
        self,
        catalogue: _Catalogue,
        consumed: Collection[Hashable],
        recently_sent: Collection[Hashable],
        segments: Collection[Hashable],
    ) -> None:
        self.catalogue, self.segments = catalogue, set(segments)
        self.maps = {"exclude_consumed": consumed, "exclude_recently_sent": recently_sent}
        self._positions: dict[str, set[int]] = {}

    def applies(self, rules: Sequence[Rule]) -> np.ndarray:
        inside = [rule.segment is None or rule.segment in self.segments for rule in rules]
        return np.array([inside], dtype=bool).reshape(1, len(rules))

    def pairs(self, kind: str, user: np.ndarray, item: np.ndarray) -> np.ndarray:
        if kind not in self._positions:
            lookup = self.catalogue.positions.get
            self._positions[kind] = {lookup(i, -1) for i in self.maps[kind]}
        positions = self._positions[kind]
        return np.fromiter((p in positions for p in item.tolist()), dtype=bool, count=len(item))


# --- apply ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Final:
    """The final rows, by user and rank: candidate row (-1: a pin's own) and pin index (-1)."""

    user: np.ndarray
    item: np.ndarray
    row: np.ndarray
    pin: np.ndarray
    rank: np.ndarray
    score: np.ndarray
    labels: np.ndarray


class _Run:
    """One application of the rules to candidate rows (user code, item position, score)."""

    def __init__(
        self,
        pipeline: RulePipeline,
        audience: _Audience | _OneUser,
        user: np.ndarray,
        item: np.ndarray,
        score: np.ndarray,
        item_ids: np.ndarray,
        k: int,
        tracing: bool,
    ) -> None:
        self.p, self.audience, self.k, self.tracing = pipeline, audience, k, tracing
        self.user, self.item, self.score, self.item_ids = user, item, score, item_ids
        self.n_users = int(user.max()) + 1 if len(user) else 0
        self.n_items = len(pipeline.catalogue.ids)
        self.applies = {
            name: audience.applies(getattr(pipeline, name).rules)
            for name in ("filters", "multipliers", "caps", "pins")
        }
        self.events: list[tuple[np.ndarray, np.ndarray, str | None, str]] = []

    def run(self) -> _Final:
        reason = self.filter_reasons(self.user, self.item)
        self.trace_removals(reason)
        kept = reason == KEPT
        touched = self.rescore(kept)
        rows = self.diversify(self.rerank(np.flatnonzero(kept)))
        return self.place(rows, touched)

    def filter_reasons(self, user: np.ndarray, item: np.ndarray) -> np.ndarray:
        """Per row: KEPT, or why it goes (UNKNOWN, UNAVAILABLE, the index of a filter rule)."""
        position = np.where(item >= 0, item, 0)
        reason = np.full(len(item), KEPT, dtype=np.int64)
        stage = self.p.filters
        if stage.rules:
            hit = stage.masks[position] & self.applies["filters"][user]
            for j, rule in enumerate(stage.rules):
                if rule.kind in PAIRED:
                    rows = np.flatnonzero(hit[:, j])
                    hit[rows, j] = self.audience.pairs(rule.kind, user[rows], position[rows])
            removed = hit.any(axis=1)
            reason[removed] = hit[removed].argmax(axis=1)
        reason[~self.p.catalogue.available[position]] = UNAVAILABLE
        reason[item < 0] = UNKNOWN
        return reason

    def rescore(self, kept: np.ndarray) -> np.ndarray:
        """Multiply the scores of the rows each multiplier touches; returns who touched what."""
        stage = self.p.multipliers
        position = np.where(self.item >= 0, self.item, 0)
        touched = stage.masks[position] & self.applies["multipliers"][self.user]
        touched &= kept[:, None]
        if stage.rules:
            total = np.ones(len(self.score))
            for j, factor in enumerate(self.p.factors):  # by column: no (rows × rules) floats
                total[touched[:, j]] *= factor
            self.score = np.where(self.score >= 0, self.score * total, self.score / total)
        for j, rule in enumerate(stage.rules if self.tracing else ()):
            self.record(np.flatnonzero(touched[:, j]), rule.name, rule.effect())
        return touched

    def rerank(self, rows: np.ndarray) -> np.ndarray:
        """Rows by user, then score (best first); a repeated item keeps its best row."""
        rows = rows[np.lexsort((-self.score[rows], self.user[rows]))]
        _, first = np.unique(self.user[rows] * self.n_items + self.item[rows], return_index=True)
        return rows if len(first) == len(rows) else rows[np.sort(first)]

    def diversify(self, rows: np.ndarray) -> np.ndarray:
        """Each cap rule, by priority, keeps a user's best `cap` matching items per category."""
        catalogue = self.p.catalogue
        for j, rule in enumerate(self.p.caps.rules):
            item, user = self.item[rows], self.user[rows]
            category = catalogue.category[item]
            counted = self.p.caps.masks[item, j] & (category >= 0)
            counted &= self.applies["caps"][user, j]
            keys = user[counted] * max(catalogue.n_categories, 1) + category[counted]
            capped = np.flatnonzero(counted)[_group_position(keys) >= rule.cap]
            self.record(rows[capped], rule.name, f"capped by {rule.name}")
            rows = np.delete(rows, capped)
        return rows

    # pins and the final lists

    def place(self, rows: np.ndarray, touched: np.ndarray) -> _Final:
        """Pins into their slots, the other rows into the free ones in order; k per user."""
        has_rows = np.zeros(self.n_users, dtype=bool)
        has_rows[self.user[rows]] = True
        taken = np.zeros((self.n_users, self.k), dtype=bool)
        placed: dict[int, np.ndarray] = {}
        pins = [self.pin(j, has_rows, taken, placed) for j in range(len(self.p.pins.rules))]
        pin_user = np.concatenate([users for users, _ in pins] or [np.empty(0, np.int64)])
        pin_slot = np.concatenate([slots for _, slots in pins] or [np.empty(0, np.int64)])
        pin_index = np.repeat(np.arange(len(pins)), [len(users) for users, _ in pins])
        pin_item = self.p.pin_items[pin_index]
        rows, pin_row = self.take_pinned(rows, pin_user * self.n_items + pin_item)
        user = self.user[rows]
        nth = _group_position(user)
        fits = nth < self.k - taken.sum(axis=1)[user]
        free_slots = np.argsort(taken, axis=1, kind="stable")  # free (False) slots first
        rows, user, slot = rows[fits], user[fits], free_slots[user[fits], nth[fits]]
        return self.final(
            user=np.concatenate([user, pin_user]),
            item=np.concatenate([self.item[rows], pin_item]),
            row=np.concatenate([rows, pin_row]),
            pin=np.concatenate([np.full(len(rows), -1), pin_index]),
            slot=np.concatenate([slot, pin_slot]),
            touched=touched,
        )

    def pin(
        self, j: int, has_rows: np.ndarray, taken: np.ndarray, placed: dict[int, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Users and slots where pin j goes; reports the users it could not serve."""
        rule, item = self.p.pins.rules[j], int(self.p.pin_items[j])
        users = np.flatnonzero(has_rows & self.applies["pins"][:, j])
        none = (users[:0], users[:0])
        if item < 0 or not self.p.pins.masks[item, j]:
            why = "is not in the catalogue" if item < 0 else "does not meet the conditions"
            self.record_pin(users, rule, f"pin not applied: the item {why}")
            return none
        reason = self.filter_reasons(users, np.full(len(users), item))
        for code in np.unique(reason[reason != KEPT]) if self.tracing else ():
            why = self.reason_text(code).replace("removed", "the item is removed")
            self.record_pin(users[reason == code], rule, f"pin not applied: {why}")
        users = users[reason == KEPT]
        twice = np.isin(users, placed.get(item, users[:0]))
        self.record_pin(users[twice], rule, "pin not applied: an earlier pin placed the item")
        users = users[~twice]
        start = rule.position - 1
        free = ~taken[users, start:] if start < self.k else np.zeros((len(users), 1), bool)
        fits = free.any(axis=1)
        self.record_pin(users[~fits], rule, "pin not applied: no free position up to k")
        users, slot = users[fits], start + free[fits].argmax(axis=1)
        taken[users, slot] = True
        placed[item] = np.concatenate([placed.get(item, users[:0]), users])
        return users, slot

    def take_pinned(self, rows: np.ndarray, pin_keys: np.ndarray) -> tuple[np.ndarray, ...]:
        """Remove pinned items from the organic rows; a pin keeps the row of its candidate
        (source, because, multipliers) when it had one, else -1."""
        pin_row = np.full(len(pin_keys), -1, dtype=np.int64)
        if not len(pin_keys):
            return rows, pin_row
        keys = self.user[rows] * self.n_items + self.item[rows]
        order = np.argsort(pin_keys)
        moved = _member(keys, pin_keys[order])
        pin_row[order[np.searchsorted(pin_keys[order], keys[moved])]] = rows[moved]
        return rows[~moved], pin_row

    def final(
        self,
        *,
        user: np.ndarray,
        item: np.ndarray,
        row: np.ndarray,
        pin: np.ndarray,
        slot: np.ndarray,
        touched: np.ndarray,
    ) -> _Final:
        """Order by user and slot, rank from 1; a pinned row takes the score of the row above."""
        order = np.lexsort((slot, user))
        user, item, row, pin = user[order], item[order], row[order], pin[order]
        rank = _group_position(user) + 1
        own = np.where(row >= 0, self.score[row] if len(self.score) else 0.0, 0.0)
        score = _fill_within(np.where(pin >= 0, np.nan, own), user)
        score = np.where(np.isnan(score) & (pin >= 0), own, score)
        for j, rule in enumerate(self.p.pins.rules if self.tracing else ()):
            for place in np.unique(rank[pin == j]):
                users = user[(pin == j) & (rank == place)]
                self.record_pin(users, rule, f"pinned at {place} by {rule.name}")
        labels = self.labels(row, pin, rank, touched)
        return _Final(user, item, row, pin, rank, score, labels)

    def labels(
        self, row: np.ndarray, pin: np.ndarray, rank: np.ndarray, touched: np.ndarray
    ) -> np.ndarray:
        """The `rules` column: the multipliers that touched each row, then its pin."""
        mine = np.zeros((len(row), touched.shape[1]), dtype=bool)
        mine[row >= 0] = touched[row[row >= 0]]
        _, code = np.unique(_row_codes(mine), return_inverse=True)
        width = self.k + 1
        key = (code.ravel() * (len(self.p.pins.rules) + 1) + pin + 1) * width
        key += np.where(pin >= 0, rank, 0)
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        table = np.empty(len(first), dtype=object)
        effects = [rule.effect() for rule in self.p.multipliers.rules]
        for index, at in enumerate(first):
            label = [effect for effect, on in zip(effects, mine[at], strict=True) if on]
            if pin[at] >= 0:
                label.append(f"pinned at {rank[at]} by {self.p.pins.rules[pin[at]].name}")
            table[index] = tuple(label)
        return table[inverse.ravel()]

    # trace

    def reason_text(self, code: int) -> str:
        if code == UNKNOWN:
            return "removed: not in the catalogue"
        if code == UNAVAILABLE:
            return "removed: unavailable"
        return f"removed by {self.p.filters.rules[code].name}"

    def trace_removals(self, reason: np.ndarray) -> None:
        for code in np.unique(reason[reason != KEPT]) if self.tracing else ():
            rule = None if code < 0 else self.p.filters.rules[code].name
            self.record(np.flatnonzero(reason == code), rule, self.reason_text(code))

    def record(self, rows: np.ndarray, rule: str | None, effect: str) -> None:
        if self.tracing and len(rows):
            self.events.append((self.user[rows], self.item_ids[rows], rule, effect))

    def record_pin(self, users: np.ndarray, rule: Rule, effect: str) -> None:
        if self.tracing and len(users):
            item = np.full(len(users), rule.item_id, dtype=object)
            self.events.append((users, item, rule.name, effect))


PAIRED = ("exclude_consumed", "exclude_recently_sent")


def _member(values: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """`np.isin` for sorted unique keys, without sorting `values` (which may be millions)."""
    if not len(sorted_keys):
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_keys, values), len(sorted_keys) - 1)
    return sorted_keys[at] == values


def _row_codes(matrix: np.ndarray) -> np.ndarray:
    """One integer per row, equal for equal rows of a boolean matrix."""
    if matrix.shape[1] <= 62:
        return matrix.astype(np.int64) @ (np.int64(1) << np.arange(matrix.shape[1], dtype=np.int64))
    return np.unique(matrix, axis=0, return_inverse=True)[1].ravel()


def _group_position(keys: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each group of equal keys, in the given order (a vectorized cumcount)."""
    if len(keys) == 0:
        return np.empty(0, dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    lengths = np.diff(np.r_[starts, len(keys)])
    position = np.empty(len(keys), dtype=np.int64)
    position[order] = np.arange(len(keys)) - np.repeat(starts, lengths)
    return position


def _fill_within(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Fill NaN from the previous value of the same group, else from the next one."""
    filled = _ffill_within(values, groups)
    return _ffill_within(filled[::-1], groups[::-1])[::-1]


def _ffill_within(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    if len(values) == 0:
        return values
    start = np.r_[True, groups[1:] != groups[:-1]]
    source = np.where(~np.isnan(values) | start, np.arange(len(values)), 0)
    return values[np.maximum.accumulate(source)]


# --- output --------------------------------------------------------------------------------


def _optional(frame: pd.DataFrame, name: str) -> np.ndarray | None:
    return frame[name].to_numpy(dtype=object) if name in frame.columns else None


def _pick(values: Sequence[Any] | np.ndarray | None, row: np.ndarray, fill: Any) -> np.ndarray:
    """Candidates' values for rows taken from them; `fill` for pinned items that were not."""
    picked = np.full(len(row), fill, dtype=object)
    present = row >= 0
    picked[present] = None if values is None else np.asarray(values, dtype=object)[row[present]]
    return picked


def _lists_frame(
    users: np.ndarray, final: _Final, items: np.ndarray, source: np.ndarray, because: np.ndarray
) -> pd.DataFrame:
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


def _trace_frame(events: list[tuple], users: np.ndarray) -> pd.DataFrame:
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


# --- conflicts -----------------------------------------------------------------------------


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
    starts = [m for m in (_utc(a.starts_at), _utc(b.starts_at)) if m is not None]
    ends = [m for m in (_utc(a.ends_at), _utc(b.ends_at)) if m is not None]
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
