"""One application of compiled rules to candidate rows: filter, rescore, rerank, diversify, pin."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .arrays import fill_within_groups, isin_sorted, position_in_group, row_codes
from .audience import BatchAudience, OneUserAudience
from .catalogue import Catalogue, RuleStage
from .model import Rule

UNKNOWN, UNAVAILABLE = -3, -2  # filter reasons that are not rules (rules use their index)
KEPT = -1
PAIRED = ("exclude_consumed", "exclude_recently_sent")


@dataclass(frozen=True)
class FinalRows:
    """The final rows, by user and rank: candidate row (-1: a pin's own) and pin index (-1)."""

    user: np.ndarray
    item: np.ndarray
    row: np.ndarray
    pin: np.ndarray
    rank: np.ndarray
    score: np.ndarray
    labels: np.ndarray


class CompiledRules(Protocol):
    """What a run reads from the compiled rules; `RulePipeline` is one."""

    @property
    def catalogue(self) -> Catalogue: ...
    @property
    def filters(self) -> RuleStage: ...
    @property
    def multipliers(self) -> RuleStage: ...
    @property
    def factors(self) -> np.ndarray: ...
    @property
    def caps(self) -> RuleStage: ...
    @property
    def pins(self) -> RuleStage: ...
    @property
    def pin_items(self) -> np.ndarray: ...


class RuleRun:
    """One application of the rules to candidate rows (user code, item position, score)."""

    def __init__(
        self,
        pipeline: CompiledRules,
        audience: BatchAudience | OneUserAudience,
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

    def run(self) -> FinalRows:
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
            capped = np.flatnonzero(counted)[position_in_group(keys) >= rule.cap]
            self.record(rows[capped], rule.name, f"capped by {rule.name}")
            rows = np.delete(rows, capped)
        return rows

    # pins and the final lists

    def place(self, rows: np.ndarray, touched: np.ndarray) -> FinalRows:
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
        nth = position_in_group(user)
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
        moved = isin_sorted(keys, pin_keys[order])
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
    ) -> FinalRows:
        """Order by user and slot, rank from 1; a pinned row takes the score of the row above."""
        order = np.lexsort((slot, user))
        user, item, row, pin = user[order], item[order], row[order], pin[order]
        rank = position_in_group(user) + 1
        own = np.where(row >= 0, self.score[row] if len(self.score) else 0.0, 0.0)
        score = fill_within_groups(np.where(pin >= 0, np.nan, own), user)
        score = np.where(np.isnan(score) & (pin >= 0), own, score)
        for j, rule in enumerate(self.p.pins.rules if self.tracing else ()):
            for place in np.unique(rank[pin == j]):
                users = user[(pin == j) & (rank == place)]
                self.record_pin(users, rule, f"pinned at {place} by {rule.name}")
        labels = self.labels(row, pin, rank, touched)
        return FinalRows(user, item, row, pin, rank, score, labels)

    def labels(
        self, row: np.ndarray, pin: np.ndarray, rank: np.ndarray, touched: np.ndarray
    ) -> np.ndarray:
        """The `rules` column: the multipliers that touched each row, then its pin."""
        mine = np.zeros((len(row), touched.shape[1]), dtype=bool)
        mine[row >= 0] = touched[row[row >= 0]]
        _, code = np.unique(row_codes(mine), return_inverse=True)
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
