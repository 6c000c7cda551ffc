from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from recommendations.services.importing import ImportFailed, ImportReport, data_import

KINDS = ("users", "items", "interactions")
COUNTS = ("read", "created", "updated", "unchanged", "duplicates", "rejected")


class Command(BaseCommand):
    help = (
        "Import Personalize-style CSV files (local paths or s3:// URIs) in the order users, "
        "items, interactions. Re-importing the same files changes nothing."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--users", metavar="FILE", help="USER_ID + any columns")
        parser.add_argument("--items", metavar="FILE", help="ITEM_ID + any columns")
        parser.add_argument(
            "--interactions",
            metavar="FILE",
            help="USER_ID, ITEM_ID, TIMESTAMP [, EVENT_TYPE, EVENT_VALUE, EVENT_ID, ...]",
        )
        parser.add_argument(
            "--skip-invalid",
            action="store_true",
            help="Import the valid rows; write the invalid ones, with reasons, to a rejects CSV.",
        )
        parser.add_argument(
            "--rejects-dir",
            type=Path,
            metavar="DIR",
            help="Where rejects CSVs go (default: var/rejects/).",
        )

    def handle(self, *args, **options) -> None:
        if not any(options[kind] for kind in KINDS):
            raise CommandError("give at least one of --users, --items, --interactions")
        try:
            report = data_import(
                **{kind: options[kind] for kind in KINDS},
                skip_invalid=options["skip_invalid"],
                rejects_dir=options["rejects_dir"],
                progress=options["verbosity"] >= 1,
            )
        except ImportFailed as failure:
            if failure.report and failure.report.files:
                self.stdout.write("Imported before the failure:")
                self._summary_write(failure.report)
            raise CommandError(str(failure)) from None
        self._summary_write(report)
        if report.rejected:
            self.stdout.write(
                self.style.WARNING(
                    f"{report.rejected} invalid rows were skipped (see the rejects files)."
                )
            )
        self.stdout.write(self.style.SUCCESS(f"Imported in {report.seconds:.1f} s."))

    def _summary_write(self, report: ImportReport) -> None:
        width = max(len(file_report.source) for file_report in report.files)
        self.stdout.write(f"{'file':<{width}}" + "".join(f"{name:>11}" for name in COUNTS))
        for file_report in report.files:
            counts = "".join(f"{getattr(file_report, name):>11,}" for name in COUNTS)
            self.stdout.write(f"{file_report.source:<{width}}{counts}")
            if file_report.rejects_path:
                self.stdout.write(f"  rejected rows: {file_report.rejects_path}")
        if report.event_types_created:
            self.stdout.write(
                f"New event types (weight 1.0): {', '.join(report.event_types_created)}"
            )
