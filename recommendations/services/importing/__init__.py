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

Inside: `files` opens and checks a file and reads it in chunks; `columns` names the columns
each kind needs and those that fill fields, parsed by `cells`; `entities` and `interactions`
validate a chunk and write it; `rejects` writes the skipped rows; `reports` holds the results
and `ImportFailed`.
"""

import time
from contextlib import ExitStack
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.db import transaction
from tqdm import tqdm

from .entities import EntityImport
from .files import CHUNK_ROWS, CsvFile, csv_file_open, frames
from .interactions import InteractionImport
from .rejects import RejectsFile
from .reports import FileReport, ImportFailed, ImportReport

__all__ = ["FileReport", "ImportFailed", "ImportReport", "data_import"]

MAX_ERRORS = 20


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
        files = [csv_file_open(stack, kind, source) for kind, source in sources]
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


def _file_import(
    csv_file: CsvFile, report: ImportReport, *, skip_invalid: bool, folder: Path, progress: bool
) -> FileReport:
    file_report = FileReport(kind=csv_file.kind, source=csv_file.source)
    rejects = RejectsFile(csv_file, folder) if skip_invalid else None
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


def _importer(csv_file: CsvFile, file_report: FileReport) -> EntityImport | InteractionImport:
    if csv_file.kind == "interactions":
        return InteractionImport(csv_file, file_report)
    return EntityImport(csv_file, file_report)


def _chunks_import(
    csv_file: CsvFile,
    importer: EntityImport | InteractionImport,
    file_report: FileReport,
    rejects: RejectsFile | None,
    progress: bool,
) -> tuple[dict[int, str], bool]:
    """Errors by line (empty when the file was written) and whether the whole file was read."""
    errors: dict[int, str] = {}
    name = PurePosixPath(csv_file.source).name
    with tqdm(total=csv_file.lines - 1, desc=name, unit="line", disable=not progress) as bar:
        # The package's CHUNK_ROWS, so that setting importing.CHUNK_ROWS sizes the chunks.
        for frame, consumed in frames(csv_file, CHUNK_ROWS):
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
