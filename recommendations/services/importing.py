"""CSV import of users, items and interactions: Personalize-style files, local or on S3.

One file is one transaction: a file with an invalid row writes nothing, unless `skip_invalid`,
which writes the valid rows and a rejects CSV (the original columns plus LINE and REASON).
Files run in the order users, items, interactions, so interactions may name the users and
items of the same run; a failed file stops the run, and the files before it stay imported.
Re-importing the same files changes nothing: users and items are compared with what is
stored, interactions are idempotent by event id.

Columns (names are case-insensitive; line 1 is the header):
- users: USER_ID; EMAIL, EMAIL_OPT_IN, PERSONALIZATION_OPT_OUT go to fields, the rest to
  `attributes`. An imported user is no longer anonymous.
- items: ITEM_ID; TITLE, DESCRIPTION, URL, IMAGE_URL, CATEGORIES or GENRES (`|`-separated),
  TAGS (`|`-separated), PRICE, AVAILABLE (true/false, 1/0, yes/no), PUBLISHED_AT or
  CREATION_TIMESTAMP (unix seconds or ISO 8601) go to fields, the rest to `attributes`.
- interactions: USER_ID, ITEM_ID, TIMESTAMP; EVENT_TYPE (empty or absent: `view`; unknown
  types are created with weight 1.0), EVENT_VALUE, EVENT_ID (empty or absent: derived from the
  event, as the events API does); the rest goes to `context`. USER_ID and ITEM_ID must name
  stored users and items.
Attribute and context keys are the column names lower-cased. In a column of numbers (99% of
its values plain numbers, none with a leading zero, so zip codes stay text) numbers are stored
as numbers and the odd other value as text. An empty cell clears its field or attribute;
fields and attributes the file has no column for stay as they are.
Within a file, the first row of a user or item id wins; later ones count as duplicates.
"""

import codecs
import csv
import itertools
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.db import connection, models, transaction
from django.utils import timezone
from tqdm import tqdm

from integrations.storage import StorageError, local_copy
from recommendations.models import EndUser, EventType, Interaction, Item
from recommendations.services.events import (
    MAX_FUTURE_SKEW,
    MAX_ID_LENGTH,
    InvalidValue,
    event_id_derive,
    external_id_clean,
    timestamp_parse,
)

CHUNK_ROWS = 50_000
WRITE_BATCH = 5_000
MAX_ERRORS = 20
DEFAULT_EVENT_TYPE = "view"
MAX_TIMESTAMP = 253402300800  # 10000-01-01, as timestamp_parse
PLAIN_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
LEADING_ZERO_NUMBER = re.compile(r"-?0[0-9]+(?:\.[0-9]+)?")
NUMERIC_TOLERANCE = 0.01  # MovieLens has a year "V": one odd value does not make a column text
EVENT_TYPE_NAME = r"[-a-zA-Z0-9_]{1,50}"
TRUE_WORDS = {"true", "t", "yes", "y", "1"}
FALSE_WORDS = {"false", "f", "no", "n", "0"}
REQUIRED_COLUMNS = {
    "users": ("USER_ID",),
    "items": ("ITEM_ID",),
    "interactions": ("USER_ID", "ITEM_ID", "TIMESTAMP"),
}
INTERACTION_COLUMNS = {"USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE", "EVENT_VALUE", "EVENT_ID"}


class ImportFailed(Exception):
    """A file that cannot be imported; the message names the file, the lines and the reasons.

    `report` holds what the run imported before the failure (the files before this one).
    """

    def __init__(self, message: str, report: "ImportReport | None" = None) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class FileReport:
    kind: str
    source: str
    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejects_path: str | None = None


@dataclass
class ImportReport:
    files: list[FileReport] = field(default_factory=list)
    event_types_created: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rejected(self) -> int:
        return sum(file_report.rejected for file_report in self.files)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CsvFile:
    """An input that passed the file-level checks: UTF-8, not empty, the right columns."""

    kind: str
    source: str
    path: Path
    header: list[str]
    lines: int
    has_quotes: bool

    @property
    def columns(self) -> list[str]:
        return [name.strip().upper() for name in self.header]

    @property
    def keys(self) -> dict[str, str]:
        """Attribute keys by column: the names as written, lower-cased."""
        return {name.strip().upper(): name.strip().lower() for name in self.header}


def data_import(
    *,
    users: str | None = None,
    items: str | None = None,
    interactions: str | None = None,
    skip_invalid: bool = False,
    rejects_dir: Path | None = None,
    progress: bool = False,
) -> ImportReport:
    """Import the given files (paths or s3:// URIs) in the order users, items, interactions."""
    sources = [
        (kind, source)
        for kind, source in (("users", users), ("items", items), ("interactions", interactions))
        if source
    ]
    if not sources:
        raise ImportFailed("nothing to import: give a users, items or interactions file")
    started = time.monotonic()
    report = ImportReport()
    folder = Path(rejects_dir) if rejects_dir else Path(settings.VAR_DIR) / "rejects"
    with ExitStack() as stack:
        # Every file is fetched and checked before any is written, so a typo in the last
        # file's name or header does not leave the first ones imported.
        files = [_csv_file_open(stack, kind, source) for kind, source in sources]
        for csv_file in files:
            try:
                report.files.append(
                    _file_import(
                        csv_file,
                        report,
                        skip_invalid=skip_invalid,
                        folder=folder,
                        progress=progress,
                    )
                )
            except ImportFailed as failure:
                failure.report = report
                raise
    report.seconds = round(time.monotonic() - started, 2)
    return report


# Opening and checking files


def _csv_file_open(stack: ExitStack, kind: str, source: str) -> CsvFile:
    try:
        path = stack.enter_context(local_copy(source))
    except StorageError as error:
        raise ImportFailed(str(error)) from None
    lines, has_quotes = _utf8_scan(source, path)
    header = _header_read(source, path)
    _columns_check(kind, source, header)
    return CsvFile(kind, source, path, header, lines, has_quotes)


def _utf8_scan(source: str, path: Path) -> tuple[int, bool]:
    """The number of physical lines and whether any quote occurs; fails on bytes not UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    newlines, size, has_quotes, last = 0, 0, False, b""
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as error:
                # error.object is the decoder's carried-over bytes plus this block; the
                # carried-over part is a partial character, so it holds no newline.
                line = newlines + error.object[: error.start].count(b"\n") + 1
                bad = error.object[error.start]
                raise ImportFailed(
                    f"{source} line {line}: not UTF-8 (byte 0x{bad:02x}); save the file as UTF-8"
                ) from None
            newlines += block.count(b"\n")
            has_quotes = has_quotes or b'"' in block
            size += len(block)
            last = block[-1:]
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise ImportFailed(
            f"{source} line {newlines + 1}: not UTF-8 (the file ends inside a character)"
        ) from None
    if size == 0:
        raise ImportFailed(f"{source}: the file is empty (0 bytes)")
    return newlines + (last != b"\n"), has_quotes


def _header_read(source: str, path: Path) -> list[str]:
    with path.open(encoding="utf-8-sig", newline="") as stream:
        reader = csv.reader(stream)
        try:
            header = next(reader, None)
            if header is None:
                raise ImportFailed(f"{source}: the file is empty")
            if not any(cell.strip() for cell in header):
                raise ImportFailed(f"{source} line 1: the header line is blank")
            if not any(line.strip(" \t\r\n,") for line in stream):  # a line of commas is blank
                raise ImportFailed(f"{source}: the file has a header but no rows")
        except csv.Error as error:
            raise ImportFailed(f"{source} line {reader.line_num}: malformed CSV: {error}") from None
    return header


def _columns_check(kind: str, source: str, header: list[str]) -> None:
    columns = [name.strip().upper() for name in header]
    required = REQUIRED_COLUMNS[kind]
    problems = []
    if "" in columns:
        problems.append(f"column {columns.index('') + 1} has no name")
    duplicated = sorted({name for name in columns if name and columns.count(name) > 1})
    if duplicated:
        problems.append(f"duplicated {', '.join(duplicated)}")
    missing = [name for name in required if name not in columns]
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    problems += _alias_conflicts(kind, columns)
    if problems:
        raise ImportFailed(
            f"{source} line 1: wrong columns: {'; '.join(problems)} "
            f"(found {', '.join(header)}; required {', '.join(required)})"
        )


def _alias_conflicts(kind: str, columns: list[str]) -> list[str]:
    """Two columns that would fill the same field, e.g. CATEGORIES and GENRES."""
    if kind not in ENTITY_KINDS:
        return []
    by_field: dict[str, list[str]] = {}
    for column in columns:
        if column in ENTITY_KINDS[kind].fields:
            by_field.setdefault(ENTITY_KINDS[kind].fields[column][0], []).append(column)
    return [
        f"{' and '.join(names)} both fill {name} (give one)"
        for name, names in by_field.items()
        if len(names) > 1
    ]


# Reading chunks


def _frames(csv_file: CsvFile) -> Iterator[tuple[pd.DataFrame, int]]:
    """The data rows in chunks, indexed by physical line number, blank lines left out;
    with each chunk, how many physical lines it took."""
    reader = pd.read_csv(
        csv_file.path,
        chunksize=CHUNK_ROWS,
        dtype=str,
        keep_default_na=False,
        skip_blank_lines=False,  # keeps row positions in step with physical lines
        encoding="utf-8-sig",
    )
    next_line = 2
    with reader:
        for frame in _parser_errors_named(reader, csv_file.source):
            frame = frame.fillna("")
            frame.columns = csv_file.columns
            spans = _row_spans(frame) if csv_file.has_quotes else np.ones(len(frame), np.int64)
            starts = next_line + np.concatenate(([0], np.cumsum(spans)[:-1]))
            frame.index = starts.astype(np.int64)
            consumed = int(spans.sum())
            next_line += consumed
            yield frame[(frame != "").any(axis=1)], consumed


def _parser_errors_named(reader: Iterable[pd.DataFrame], source: str) -> Iterator[pd.DataFrame]:
    try:
        yield from reader
    except pd.errors.ParserError as error:
        found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(error))
        if found:
            expected, line, saw = found.groups()
            raise ImportFailed(
                f"{source} line {line}: {saw} fields where the header has {expected}"
            ) from None
        raise ImportFailed(f"{source}: malformed CSV: {error}") from None


def _row_spans(frame: pd.DataFrame) -> np.ndarray:
    """Physical lines per row: 1 plus the newlines inside quoted cells."""
    spans = np.ones(len(frame), dtype=np.int64)
    for column in frame.columns:
        spans += frame[column].str.count("\n").to_numpy(dtype=np.int64)
    return spans


def _numeric_columns(csv_file: CsvFile, columns: list[str]) -> set[str]:
    """The columns that hold numbers: at least 99% of their non-empty values in the whole file
    are plain numbers, and none is a number written with a leading zero (a code, like a zip)."""
    numbers = dict.fromkeys(columns, 0)
    others = dict.fromkeys(columns, 0)
    candidates = set(columns)
    if not candidates:
        return set()
    for frame, _ in _frames(csv_file):
        for column in list(candidates):
            cells = frame[column].str.strip()
            cells = cells[cells != ""]
            if cells.str.fullmatch(LEADING_ZERO_NUMBER.pattern).any():
                candidates.discard(column)
                continue
            is_number = int(cells.str.fullmatch(PLAIN_NUMBER.pattern).sum())
            numbers[column] += is_number
            others[column] += len(cells) - is_number
        if not candidates:
            break
    return {
        column
        for column in candidates
        if numbers[column] and others[column] <= NUMERIC_TOLERANCE * numbers[column]
    }


def _number(text: str) -> int | float:
    return float(text) if "." in text else int(text)


def _batches(values: list, size: int) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _query_batch_size() -> int:
    """How many ids one `__in` query may carry on this database."""
    return min(connection.features.max_query_params or 10_000, 10_000)


# Cell parsers: a cell's text to a field value, or InvalidValue saying why not


def _text(max_length: int | None) -> Callable[[str], str]:
    def parse(cell: str) -> str:
        text = cell.strip()
        if max_length and len(text) > max_length:
            raise InvalidValue(f"longer than {max_length} characters")
        return text

    return parse


def _url(cell: str) -> str:
    text = cell.strip()
    if text:
        try:
            URLValidator()(text)
        except ValidationError:
            raise InvalidValue(f"{text[:60]!r} is not a valid URL") from None
        if len(text) > 2000:
            raise InvalidValue("longer than 2000 characters")
    return text


def _email(cell: str) -> str:
    text = cell.strip()
    if text:
        try:
            validate_email(text)
        except ValidationError:
            raise InvalidValue(f"{text[:60]!r} is not a valid email address") from None
        if len(text) > 254:
            raise InvalidValue("longer than 254 characters")
    return text


def _boolean(default: bool) -> Callable[[str], bool]:
    def parse(cell: str) -> bool:
        word = cell.strip().lower()
        if not word:
            return default
        if word in TRUE_WORDS | FALSE_WORDS:
            return word in TRUE_WORDS
        raise InvalidValue(f"{cell[:20]!r} is not true/false, 1/0 or yes/no")

    return parse


def _list(cell: str) -> list[str]:
    return [part.strip() for part in cell.split("|") if part.strip()]


def _price(cell: str) -> Decimal | None:
    text = cell.strip()
    if not text:
        return None
    try:
        price = Decimal(text)
    except InvalidOperation:
        raise InvalidValue(f"{text[:20]!r} is not a number") from None
    if not price.is_finite() or price < 0 or price >= 10**10:
        raise InvalidValue(f"{text[:20]!r} is not a price from 0 to 9999999999.99")
    if price.as_tuple().exponent < -2:
        raise InvalidValue(f"{text[:20]!r} has more than 2 decimal places")
    return price


def _moment(cell: str) -> datetime | None:
    text = cell.strip()
    return timestamp_parse(text) if text else None


# Users and items: compared with what is stored, created or updated in bulk


@dataclass(frozen=True)
class _EntityKind:
    model: type[models.Model]
    id_column: str
    fields: dict[str, tuple[str, Callable[[str], Any]]]  # column: (field name, parser)
    fixed: dict[str, Any]  # field values every imported row gets


ENTITY_KINDS = {
    "users": _EntityKind(
        model=EndUser,
        id_column="USER_ID",
        fields={
            "EMAIL": ("email", _email),
            "EMAIL_OPT_IN": ("email_opt_in", _boolean(False)),
            "PERSONALIZATION_OPT_OUT": ("personalization_opt_out", _boolean(False)),
        },
        fixed={"is_anonymous": False},
    ),
    "items": _EntityKind(
        model=Item,
        id_column="ITEM_ID",
        fields={
            "TITLE": ("title", _text(500)),
            "DESCRIPTION": ("description", _text(None)),
            "URL": ("url", _url),
            "IMAGE_URL": ("image_url", _url),
            "CATEGORIES": ("categories", _list),
            "GENRES": ("categories", _list),
            "TAGS": ("tags", _list),
            "PRICE": ("price", _price),
            "AVAILABLE": ("available", _boolean(True)),
            "PUBLISHED_AT": ("published_at", _moment),
            "CREATION_TIMESTAMP": ("published_at", _moment),
        },
        fixed={},
    ),
}


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


class _EntityImport:
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
        self.numeric = _numeric_columns(csv_file, attribute_columns)
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
        return _number(text) if column in self.numeric and PLAIN_NUMBER.fullmatch(text) else text

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
        for batch in _batches(external_ids, _query_batch_size()):
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


# Interactions: validated a column at a time, idempotent by event id


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
        for batch in _batches(unseen, _query_batch_size()):
            self.pks.update(
                self.model.objects.filter(external_id__in=batch).values_list("external_id", "pk")
            )
        self.unknown.update(id_ for id_ in unseen if id_ not in self.pks)
        return self.pks


class _InteractionImport:
    def __init__(self, csv_file: CsvFile, file_report: FileReport) -> None:
        self.report = file_report
        columns = csv_file.columns
        self.has_event_type = "EVENT_TYPE" in columns
        self.has_event_value = "EVENT_VALUE" in columns
        self.has_event_id = "EVENT_ID" in columns
        self.context_keys = {
            column: csv_file.keys[column] for column in columns if column not in INTERACTION_COLUMNS
        }
        self.numeric = _numeric_columns(csv_file, list(self.context_keys))
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
                    _number(text)
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
        for batch in _batches(event_ids, _query_batch_size()):
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


# One file: validate chunk by chunk, write while it is clean, roll back on error


class _RejectsFile:
    """The skipped rows of one input: its columns plus LINE and REASON; opened on first use."""

    def __init__(self, csv_file: CsvFile, folder: Path) -> None:
        self.csv_file = csv_file
        self.folder = folder
        self.path: Path | None = None
        self._stream = None
        self._writer = None

    def write(self, frame: pd.DataFrame, errors: dict[int, str]) -> None:
        if not errors:
            return
        if self._writer is None:
            self._open()
        rows = frame.loc[sorted(errors)]
        for line, values in zip(rows.index, rows.itertuples(index=False, name=None), strict=True):
            self._writer.writerow([*values, int(line), errors[int(line)]])

    def _open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = PurePosixPath(self.csv_file.source).stem
        stamp = timezone.now().strftime("%Y%m%dT%H%M%S")
        for attempt in itertools.count(1):
            suffix = "" if attempt == 1 else f"-{attempt}"
            self.path = self.folder / f"{stem}-rejects-{stamp}{suffix}.csv"
            try:
                self._stream = self.path.open("x", encoding="utf-8", newline="")
                break
            except FileExistsError:  # another import of a file of that name, this second
                continue
        self._writer = csv.writer(self._stream)
        self._writer.writerow([*self.csv_file.header, "LINE", "REASON"])

    def close(self) -> None:
        if self._stream:
            self._stream.close()

    def discard(self) -> None:
        self.close()
        if self.path:
            self.path.unlink(missing_ok=True)
            self.path = None


def _file_import(
    csv_file: CsvFile, report: ImportReport, *, skip_invalid: bool, folder: Path, progress: bool
) -> FileReport:
    file_report = FileReport(kind=csv_file.kind, source=csv_file.source)
    rejects = _RejectsFile(csv_file, folder) if skip_invalid else None
    try:
        with transaction.atomic():
            importer = _importer(csv_file, file_report)
            errors, complete = _chunks_import(csv_file, importer, file_report, rejects, progress)
            if errors:
                raise ImportFailed(_failure_message(csv_file.source, errors, complete))
    except BaseException:
        if rejects:
            rejects.discard()
        raise
    if rejects:
        rejects.close()
        file_report.rejects_path = str(rejects.path) if rejects.path else None
    report.event_types_created += importer.event_types_created
    return file_report


def _importer(csv_file: CsvFile, file_report: FileReport) -> _EntityImport | _InteractionImport:
    if csv_file.kind == "interactions":
        return _InteractionImport(csv_file, file_report)
    return _EntityImport(csv_file, file_report)


def _chunks_import(
    csv_file: CsvFile,
    importer: _EntityImport | _InteractionImport,
    file_report: FileReport,
    rejects: _RejectsFile | None,
    progress: bool,
) -> tuple[dict[int, str], bool]:
    """Errors by line (empty when the file was written) and whether the whole file was read."""
    errors: dict[int, str] = {}
    name = PurePosixPath(csv_file.source).name
    with tqdm(total=csv_file.lines - 1, desc=name, unit="line", disable=not progress) as bar:
        for frame, consumed in _frames(csv_file):
            file_report.read += len(frame)
            valid, chunk_errors = importer.validate(frame)
            if rejects:
                rejects.write(frame, chunk_errors)
                file_report.rejected += len(chunk_errors)
            else:
                errors.update(chunk_errors)
            if len(errors) >= MAX_ERRORS:
                return errors, False
            if not errors:
                importer.write(valid)
            bar.update(consumed)
    return errors, True


def _failure_message(source: str, errors: dict[int, str], complete: bool) -> str:
    count = f"{'' if complete else 'at least '}{len(errors)} invalid rows"
    shown = sorted(errors.items())[:MAX_ERRORS]
    if len(shown) < len(errors):
        count += f", the first {len(shown)} below"
    return "\n".join(
        [
            f"{source}: nothing of this file was imported: {count} "
            "(fix them, or skip invalid rows to import the rest)",
            *(f"{source} line {line}: {reason}" for line, reason in shown),
        ]
    )
