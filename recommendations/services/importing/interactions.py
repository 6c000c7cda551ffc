"""Interactions: validated a column at a time, idempotent by event id."""

from collections.abc import Iterable
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from django.db import models
from django.utils import timezone

from recommendations.models import EndUser, EventType, Interaction, Item
from recsite.validation import (
    MAX_FUTURE_SKEW,
    MAX_ID_LENGTH,
    InvalidValue,
    event_id_derive,
    timestamp_parse,
)

from .batches import WRITE_BATCH, batches, query_batch_size
from .cells import PLAIN_NUMBER, number
from .files import CsvFile, numeric_columns
from .reports import FileReport

INTERACTION_COLUMNS = {"USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE", "EVENT_VALUE", "EVENT_ID"}
DEFAULT_EVENT_TYPE = "view"
MAX_TIMESTAMP = 253402300800  # 10000-01-01, as timestamp_parse
EVENT_TYPE_NAME = r"[-a-zA-Z0-9_]{1,50}"


class _Reasons(dict[int, list[str]]):
    """Why each invalid row is invalid, by line."""

    def add(self, lines: Iterable, reason: str) -> None:
        for line in lines:
            self.setdefault(int(line), []).append(reason)

    def messages(self) -> dict[int, str]:
        return {line: "; ".join(reasons) for line, reasons in self.items()}


class _KnownIds:
    """Primary keys by external id, looked up once per id."""

    def __init__(self, model: type[models.Model]) -> None:
        self.model = model
        self.pks: dict[str, int] = {}
        self.unknown: set[str] = set()

    def resolve(self, external_ids: set[str]) -> dict[str, int]:
        unseen = sorted(external_ids - self.pks.keys() - self.unknown)
        for batch in batches(unseen, query_batch_size()):
            self.pks.update(
                self.model.objects.filter(external_id__in=batch).values_list("external_id", "pk")
            )
        self.unknown.update(id_ for id_ in unseen if id_ not in self.pks)
        return self.pks


class InteractionImport:
    def __init__(self, csv_file: CsvFile, file_report: FileReport) -> None:
        self.report = file_report
        columns = csv_file.columns
        self.has_event_type = "EVENT_TYPE" in columns
        self.has_event_value = "EVENT_VALUE" in columns
        self.has_event_id = "EVENT_ID" in columns
        self.context_keys = {
            column: csv_file.keys[column] for column in columns if column not in INTERACTION_COLUMNS
        }
        self.numeric = numeric_columns(csv_file, list(self.context_keys))
        self.users = _KnownIds(EndUser)
        self.items = _KnownIds(Item)
        self.event_types = dict(EventType.objects.values_list("name", "pk"))
        self.event_types_created: list[str] = []

    def validate(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[int, str]]:
        reasons = _Reasons()
        user_ids, user_pks = self._ids_resolve(frame, "USER_ID", self.users, "user", reasons)
        item_ids, item_pks = self._ids_resolve(frame, "ITEM_ID", self.items, "item", reasons)
        timestamps = _timestamps_clean(frame["TIMESTAMP"], reasons)
        values = self._event_values_clean(frame, reasons)
        types = self._event_types_clean(frame, reasons)
        given_ids = self._event_ids_clean(frame, reasons)
        valid = ~frame.index.isin(list(reasons))
        cleaned = pd.DataFrame(
            {
                "user_id": user_ids,
                "item_id": item_ids,
                "user_pk": user_pks,
                "item_pk": item_pks,
                "timestamp": pd.Series(timestamps, index=frame.index, dtype=object),
                "event_value": pd.Series(values, index=frame.index, dtype=object),
                "event_type": types,
                "event_id": given_ids,
                "context": pd.Series(self._contexts(frame), index=frame.index, dtype=object),
            },
            index=frame.index,
        )[valid]
        cleaned["event_id"] = self._event_ids_complete(cleaned)
        return cleaned, reasons.messages()

    def _ids_resolve(
        self, frame: pd.DataFrame, column: str, known: _KnownIds, noun: str, reasons: _Reasons
    ) -> tuple[pd.Series, pd.Series]:
        ids = frame[column].str.strip()
        empty = ids == ""
        too_long = ids.str.len() > MAX_ID_LENGTH
        reasons.add(ids.index[empty], f"{column} is required")
        reasons.add(ids.index[too_long], f"{column} is longer than {MAX_ID_LENGTH} characters")
        usable = ~empty & ~too_long
        pks = ids.map(known.resolve(set(ids[usable])))
        for line, value in ids[usable & pks.isna()].items():
            reasons.add([line], f"{column} {value!r} is not a known {noun}")
        return ids, pks

    def _event_values_clean(self, frame: pd.DataFrame, reasons: _Reasons) -> np.ndarray:
        values = np.full(len(frame), None, dtype=object)
        if not self.has_event_value:
            return values
        cells = frame["EVENT_VALUE"].str.strip()
        given = (cells != "").to_numpy()
        numbers = pd.to_numeric(cells.where(cells != ""), errors="coerce").to_numpy(dtype=float)
        bad = given & ~np.isfinite(numbers)
        for line, cell in cells[bad].items():
            reasons.add([line], f"EVENT_VALUE: {cell[:20]!r} is not a finite number")
        ok = given & ~bad
        values[ok] = numbers[ok].tolist()
        return values

    def _event_types_clean(self, frame: pd.DataFrame, reasons: _Reasons) -> pd.Series:
        if not self.has_event_type:
            return pd.Series(DEFAULT_EVENT_TYPE, index=frame.index, dtype=object)
        names = frame["EVENT_TYPE"].str.strip()
        names = names.where(names != "", DEFAULT_EVENT_TYPE)
        for line, name in names[~names.str.fullmatch(EVENT_TYPE_NAME)].items():
            reasons.add(
                [line],
                f"EVENT_TYPE: {name[:60]!r} is not a type name (up to 50 letters, digits, - or _)",
            )
        return names.astype(object)

    def _event_ids_clean(self, frame: pd.DataFrame, reasons: _Reasons) -> pd.Series:
        if not self.has_event_id:
            return pd.Series("", index=frame.index, dtype=object)
        ids = frame["EVENT_ID"].str.strip()
        too_long = ids.str.len() > MAX_ID_LENGTH
        reasons.add(ids.index[too_long], f"EVENT_ID is longer than {MAX_ID_LENGTH} characters")
        return ids.astype(object)

    def _event_ids_complete(self, cleaned: pd.DataFrame) -> list[str]:
        return [
            given
            or event_id_derive(
                user_id=user_id,
                item_id=item_id,
                event_type=event_type,
                timestamp=timestamp,
                event_value=value,
            )
            for given, user_id, item_id, event_type, timestamp, value in zip(
                cleaned["event_id"],
                cleaned["user_id"],
                cleaned["item_id"],
                cleaned["event_type"],
                cleaned["timestamp"],
                cleaned["event_value"],
                strict=True,
            )
        ]

    def _contexts(self, frame: pd.DataFrame) -> list[dict]:
        if not self.context_keys:
            return [{} for _ in range(len(frame))]
        columns = list(self.context_keys)
        return [
            {
                self.context_keys[column]: (
                    number(text)
                    if column in self.numeric and PLAIN_NUMBER.fullmatch(text)
                    else text
                )
                for column, cell in zip(columns, row, strict=True)
                if (text := cell.strip())
            }
            for row in frame[columns].itertuples(index=False, name=None)
        ]

    def write(self, cleaned: pd.DataFrame) -> None:
        unique = cleaned[~cleaned["event_id"].duplicated()]
        stored = self._stored_event_ids(unique["event_id"].tolist())
        fresh = unique[~unique["event_id"].isin(stored)]
        self._event_types_ensure(set(fresh["event_type"]))
        Interaction.objects.bulk_create(
            [
                Interaction(
                    event_id=event_id,
                    user_id=int(user_pk),
                    item_id=int(item_pk),
                    event_type_id=self.event_types[event_type],
                    event_value=event_value,
                    timestamp=timestamp,
                    context=context,
                    source=Interaction.Source.IMPORT,
                )
                for event_id, user_pk, item_pk, event_type, event_value, timestamp, context in zip(
                    fresh["event_id"],
                    fresh["user_pk"],
                    fresh["item_pk"],
                    fresh["event_type"],
                    fresh["event_value"],
                    fresh["timestamp"],
                    fresh["context"],
                    strict=True,
                )
            ],
            batch_size=WRITE_BATCH,
            ignore_conflicts=True,  # a concurrent writer of the same event id is a duplicate too
        )
        self.report.created += len(fresh)
        self.report.duplicates += len(cleaned) - len(fresh)

    def _stored_event_ids(self, event_ids: list[str]) -> set[str]:
        stored: set[str] = set()
        for batch in batches(event_ids, query_batch_size()):
            stored.update(
                Interaction.objects.filter(event_id__in=batch).values_list("event_id", flat=True)
            )
        return stored

    def _event_types_ensure(self, names: set[str]) -> None:
        for name in sorted(names - self.event_types.keys()):
            event_type, created = EventType.objects.get_or_create(
                name=name, defaults={"weight": 1.0, "description": "Created by the CSV import"}
            )
            self.event_types[name] = event_type.pk
            if created:
                self.event_types_created.append(name)


def _timestamps_clean(cells: pd.Series, reasons: _Reasons) -> np.ndarray:
    """Aware UTC datetimes; numeric cells converted in bulk, the rest one by one."""
    texts = cells.str.strip()
    seconds = pd.to_numeric(texts.where(texts != ""), errors="coerce").to_numpy(dtype=float)
    in_range = (seconds >= 0) & (seconds < MAX_TIMESTAMP)  # NaN compares False
    moments = np.full(len(cells), None, dtype=object)
    moments[in_range] = _seconds_to_datetimes(seconds[in_range])
    for position in np.flatnonzero(~in_range):
        try:
            moments[position] = timestamp_parse(texts.iloc[position])
        except InvalidValue as error:
            reasons.add([cells.index[position]], f"TIMESTAMP: {error}")
    latest = timezone.now() + MAX_FUTURE_SKEW
    for position, moment in enumerate(moments):
        if moment is not None and moment > latest:
            reasons.add([cells.index[position]], "TIMESTAMP: more than a day in the future")
    return moments


def _seconds_to_datetimes(seconds: np.ndarray) -> list[datetime]:
    if np.array_equal(seconds, np.floor(seconds)):
        moments = pd.to_datetime(seconds.astype(np.int64), unit="s", utc=True)
        return [moment.replace(tzinfo=UTC) for moment in moments.to_pydatetime()]
    # Fractional seconds: the same rounding as timestamp_parse, so derived event ids match.
    return [datetime.fromtimestamp(value, tz=UTC) for value in seconds.tolist()]
