"""The rejects CSV of a file imported with skip_invalid: its skipped rows, and why."""

import csv
import itertools
from pathlib import Path, PurePosixPath

import pandas as pd
from django.utils import timezone

from .files import CsvFile


class RejectsFile:
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
