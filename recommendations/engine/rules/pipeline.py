"""`RulePipeline`: rules compiled once, applied to many users (`apply`) or one (`apply_user`)."""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import EngineError
from .audience import BatchAudience, OneUserAudience
from .catalogue import Catalogue, RuleStage, build_catalogue, rule_mask
from .model import FILTERS, MULTIPLIERS, Moment, Rule, RuleResult, is_integer, to_utc
from .output import candidate_values, lists_frame, optional_column, trace_frame
from .run import FinalRows, RuleRun


@dataclass(frozen=True)
class RulePipeline:
    """Rules compiled against one item table; `apply` (many users) and `apply_user` (one user,
    the online path) run them on candidates. Compile again when the rules or the items change."""

    catalogue: Catalogue
    filters: RuleStage  # column true: the rule removes the item (for consumed/sent: if paired)
    multipliers: RuleStage
    factors: np.ndarray  # the multipliers' multipliers
    caps: RuleStage
    pins: RuleStage  # column true: the pin's conditions hold for the item
    pin_items: np.ndarray  # each pin's item position, -1 when the table does not know it
    inactive: tuple[Rule, ...] = ()

    @classmethod
    def compile(
        cls, rules: Iterable[Rule], items: pd.DataFrame, now: Moment | None = None
    ) -> RulePipeline:
        """Keep the rules active at `now` (default: the current time), by priority, and
        precompute their masks over `items` (item_id, available, categories, published_at, ...)."""
        moment = to_utc(now) or pd.Timestamp.now(tz="UTC")
        ordered = sorted(rules, key=lambda rule: rule.priority)  # stable: ties keep input order
        active = [rule for rule in ordered if rule.active_at(moment)]
        capping = any(rule.kind == "cap_per_category" for rule in active)
        catalogue = build_catalogue(items, needs_categories=capping)

        def stage(kinds: Sequence[str]) -> RuleStage:
            chosen = tuple(rule for rule in active if rule.kind in kinds)
            masks = [rule_mask(rule, items, moment) for rule in chosen]
            stacked = np.stack(masks, axis=1) if masks else np.zeros((len(items), 0), bool)
            return RuleStage(chosen, stacked)

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
        audience = BatchAudience(users, self.catalogue, consumed, recently_sent, segments)
        item_ids = candidates["item_id"].to_numpy()
        run = RuleRun(
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
        lists = lists_frame(
            labels[final.user],
            final,
            self.catalogue.ids[final.item],
            candidate_values(optional_column(candidates, "source"), row, "pinned"),
            candidate_values(optional_column(candidates, "because_item_id"), row, None),
        )
        return RuleResult(lists, trace_frame(run.events, labels))

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
        one = OneUserAudience(self.catalogue, consumed, recently_sent, segments)
        user = np.zeros(len(ids), dtype=np.int64)
        score = np.asarray(scores, dtype=float)
        run = RuleRun(self, one, user, positions, score, np.array(ids, dtype=object), k, trace)
        final = run.run()
        return UserList(
            user_id=user_id,
            item_id=self.catalogue.ids[final.item],
            score=final.score,
            source=candidate_values(sources, final.row, "pinned"),
            because_item_id=candidate_values(because, final.row, None),
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
    events: tuple = ()  # the trace, as RuleRun records it

    def frames(self) -> RuleResult:
        """The same DataFrames `apply` returns."""
        n = len(self.item_id)
        final = FinalRows(
            np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64),
            np.zeros(n, np.int64), np.arange(1, n + 1), self.score, self.rules,
        )  # fmt: skip
        users = np.full(n, self.user_id, dtype=object)
        lists = lists_frame(users, final, self.item_id, self.source, self.because_item_id)
        return RuleResult(lists, trace_frame(list(self.events), np.array([self.user_id])))


def _check_k(k: Any) -> None:
    if not is_integer(k) or k < 1:
        raise EngineError(f"k must be a whole number of 1 or more (got {k!r})")
