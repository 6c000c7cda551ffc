"""Opening a file and checking it (UTF-8, not empty, the right columns), then reading it in
chunks indexed by physical line number."""

import codecs
import csv
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.io.parsers import TextFileReader

from integrations.storage import StorageError, local_copy

from .cells import LEADING_ZERO_NUMBER, PLAIN_NUMBER
from .columns import columns_check
from .reports import ImportFailed

CHUNK_ROWS = 50_000
NUMERIC_TOLERANCE = 0.01  # MovieLens has a year "V": one odd value does not make a column text


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


def csv_file_open(stack: ExitStack, kind: str, source: str) -> CsvFile:
    try:
        path = stack.enter_context(local_copy(source))
    except StorageError as error:
        raise ImportFailed(str(error)) from None
    lines, has_quotes = _utf8_scan(source, path)
    header = _header_read(source, path)
    columns_check(kind, source, header)
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
            if b"\x00" in block:
                line = newlines + block[: block.index(b"\x00")].count(b"\n") + 1
                raise ImportFailed(
                    f"{source} line {line}: a NUL byte (0x00), so not UTF-8 text (UTF-16?); "
                    "save the file as UTF-8"
                )
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


def frames(csv_file: CsvFile, chunk_rows: int = CHUNK_ROWS) -> Iterator[tuple[pd.DataFrame, int]]:
    """The data rows in chunks, indexed by physical line number, blank lines left out;
    with each chunk, how many physical lines it took."""
    # pandas tokenizes the first rows as soon as the reader is made: errors there too.
    reader = _parser_errors_named(
        lambda: pd.read_csv(
            csv_file.path,
            chunksize=chunk_rows,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,  # keeps row positions in step with physical lines
            encoding="utf-8-sig",
        ),
        csv_file,
    )
    next_line = 2
    with closing(reader):
        for frame in reader:
            if not isinstance(frame.index, pd.RangeIndex):
                # A first row with one field more than the header: pandas made its first
                # field the index and shifted every value one column left.
                fields = len(csv_file.header)
                raise ImportFailed(
                    f"{csv_file.source} line {_record_line(csv_file.path, 2)}: "
                    f"{fields + 1} fields where the header has {fields}"
                )
            frame = frame.fillna("")
            frame.columns = csv_file.columns
            spans = _row_spans(frame) if csv_file.has_quotes else np.ones(len(frame), np.int64)
            starts = next_line + np.concatenate(([0], np.cumsum(spans)[:-1]))
            frame.index = starts.astype(np.int64)
            consumed = int(spans.sum())
            next_line += consumed
            yield frame[(frame != "").any(axis=1)], consumed


def _parser_errors_named(
    make_reader: Callable[[], TextFileReader], csv_file: CsvFile
) -> Iterator[pd.DataFrame]:
    source = csv_file.source
    try:
        with make_reader() as reader:
            yield from reader
    except pd.errors.ParserError as error:
        found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(error))
        if found:
            expected, record, saw = found.groups()
            line = _record_line(csv_file.path, int(record))
            raise ImportFailed(
                f"{source} line {line}: {saw} fields where the header has {expected}"
            ) from None
        raise ImportFailed(f"{source}: malformed CSV: {error}") from None


def _record_line(path: Path, record: int) -> int:
    """The line the `record`-th record (1 is the header) starts on, counted as the rows'
    lines are: pandas counts records, and a quoted cell may hold line breaks."""
    try:
        before = pd.read_csv(
            path,
            nrows=max(record - 2, 0),
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
            encoding="utf-8-sig",
            index_col=False,
        )
    except (pd.errors.ParserError, ValueError):
        return record
    return 2 + int(_row_spans(before.fillna("")).sum())


def _row_spans(frame: pd.DataFrame) -> np.ndarray:
    """Physical lines per row: 1 plus the newlines inside quoted cells."""
    spans = np.ones(len(frame), dtype=np.int64)
    for column in frame.columns:
        spans += frame[column].str.count("\n").to_numpy(dtype=np.int64)
    return spans


def numeric_columns(csv_file: CsvFile, columns: list[str]) -> set[str]:
    """The columns that hold numbers: at least 99% of their non-empty values in the whole file
    are plain numbers, and none is a number written with a leading zero (a code, like a zip)."""
    numbers = dict.fromkeys(columns, 0)
    others = dict.fromkeys(columns, 0)
    candidates = set(columns)
    if not candidates:
        return set()
    for frame, _ in frames(csv_file):
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
