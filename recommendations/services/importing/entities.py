"""Users and items: compared with what is stored, created or updated in bulk."""

from dataclasses import dataclass
from typing import Any

import pandas as pd
from django.db import models
from django.utils import timezone

from recsite.validation import InvalidValue, external_id_clean

from .batches import WRITE_BATCH, batches, query_batch_size
from .cells import PLAIN_NUMBER, number
from .columns import ENTITY_KINDS
from .files import CsvFile, numeric_columns
from .reports import FileReport


@dataclass
class _EntityRow:
    external_id: str
    fields: dict[str, Any]
    attributes: dict[str, Any]  # None: remove the key


def _attributes_merge(stored: dict, given: dict[str, Any]) -> dict:
    merged = dict(stored)
    for key, value in given.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


class EntityImport:
    def __init__(self, csv_file: CsvFile, file_report: FileReport) -> None:
        self.kind = ENTITY_KINDS[csv_file.kind]
        self.report = file_report
        self.event_types_created: list[str] = []
        columns = csv_file.columns
        self.parsers = {
            column: self.kind.fields[column] for column in columns if column in self.kind.fields
        }
        attribute_columns = [
            column
            for column in columns
            if column != self.kind.id_column and column not in self.parsers
        ]
        self.attribute_keys = {column: csv_file.keys[column] for column in attribute_columns}
        self.numeric = numeric_columns(csv_file, attribute_columns)
        self.update_fields = sorted(
            {name for name, _ in self.parsers.values()}
            | set(self.kind.fixed)
            | ({"attributes"} if attribute_columns else set())
        ) + ["updated_at"]
        self.seen: set[str] = set()

    def validate(self, frame: pd.DataFrame) -> tuple[list[_EntityRow], dict[int, str]]:
        rows, errors = [], {}
        for line, record in zip(frame.index, frame.to_dict("records"), strict=True):
            try:
                rows.append(self._row_clean(record))
            except InvalidValue as error:
                errors[int(line)] = str(error)
        return rows, errors

    def _row_clean(self, record: dict[str, str]) -> _EntityRow:
        reasons, external_id = [], ""
        try:
            external_id = external_id_clean(record[self.kind.id_column], self.kind.id_column)
        except InvalidValue as error:
            reasons.append(str(error))
        fields = dict(self.kind.fixed)
        for column, (name, parse) in self.parsers.items():
            try:
                fields[name] = parse(record[column])
            except InvalidValue as error:
                reasons.append(f"{column}: {error}")
        if reasons:
            raise InvalidValue("; ".join(reasons))
        attributes = {
            key: self._attribute(column, record[column])
            for column, key in self.attribute_keys.items()
        }
        return _EntityRow(external_id, fields, attributes)

    def _attribute(self, column: str, cell: str) -> Any:
        text = cell.strip()
        if not text:
            return None
        return number(text) if column in self.numeric and PLAIN_NUMBER.fullmatch(text) else text

    def write(self, rows: list[_EntityRow]) -> None:
        fresh = []
        for row in rows:
            if row.external_id in self.seen:
                self.report.duplicates += 1
            else:
                self.seen.add(row.external_id)
                fresh.append(row)
        stored = self._stored([row.external_id for row in fresh])
        now = timezone.now()
        created, updated = [], []
        for row in fresh:
            entity = stored.get(row.external_id)
            if entity is None:
                created.append(self._new(row))
            elif self._changes_apply(entity, row):
                entity.updated_at = now
                updated.append(entity)
        self.kind.model.objects.bulk_create(created, batch_size=WRITE_BATCH)
        if updated:
            self.kind.model.objects.bulk_update(updated, self.update_fields, batch_size=WRITE_BATCH)
        self.report.created += len(created)
        self.report.updated += len(updated)
        self.report.unchanged += len(fresh) - len(created) - len(updated)

    def _stored(self, external_ids: list[str]) -> dict[str, models.Model]:
        stored = {}
        for batch in batches(external_ids, query_batch_size()):
            stored.update(
                (entity.external_id, entity)
                for entity in self.kind.model.objects.filter(external_id__in=batch)
            )
        return stored

    def _new(self, row: _EntityRow) -> models.Model:
        attributes = {key: value for key, value in row.attributes.items() if value is not None}
        return self.kind.model(external_id=row.external_id, attributes=attributes, **row.fields)

    def _changes_apply(self, entity: models.Model, row: _EntityRow) -> bool:
        changed = False
        for name, value in row.fields.items():
            if getattr(entity, name) != value:
                setattr(entity, name, value)
                changed = True
        attributes = _attributes_merge(entity.attributes, row.attributes)
        if attributes != entity.attributes:
            entity.attributes = attributes
            changed = True
        return changed
