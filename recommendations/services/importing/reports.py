"""What an import reports, per file and per run, and the failure that stops a run."""

from dataclasses import asdict, dataclass, field


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
