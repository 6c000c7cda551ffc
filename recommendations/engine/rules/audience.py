"""Who the rules apply to: segment membership and the consumed / recently sent item maps."""

from __future__ import annotations

import itertools
from collections.abc import Collection, Hashable, Mapping, Sequence

import numpy as np
import pandas as pd

from .arrays import isin_sorted
from .catalogue import Catalogue
from .model import Rule


class BatchAudience:
    """The batch path's users (codes into `users`): segment membership and item maps."""

    def __init__(
        self,
        users: pd.Index,
        catalogue: Catalogue,
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
        return isin_sorted(user * len(self.catalogue.ids) + item, self._keys[kind])

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


class OneUserAudience:
    """The online path's one user (code 0): their segments and item sets."""

    def __init__(
        self,
        catalogue: Catalogue,
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
