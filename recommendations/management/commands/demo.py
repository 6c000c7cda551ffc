from django.core.management.base import BaseCommand, CommandError

from recommendations.services.demo import demo_data_load
from recommendations.services.importing import ImportFailed


class Command(BaseCommand):
    help = "Run the main job on a synthetic publisher's catalogue and audience, and summarize."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--users", type=int, default=2000)
        parser.add_argument("--items", type=int, default=600)
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args, users: int, items: int, seed: int, **options) -> None:
        self.stdout.write(f"Generating {users} users and {items} items (seed {seed})…")
        try:
            report = demo_data_load(
                n_users=users, n_items=items, seed=seed, progress=options["verbosity"] > 0
            )
        except (ImportFailed, ValueError) as error:
            raise CommandError(str(error)) from None

        self.stdout.write(self.style.MIGRATE_HEADING("\nImported"))
        for file_report in report.import_report.files:
            self.stdout.write(
                f"  {file_report.kind:<13} {file_report.read:>7} rows: {file_report.created} new, "
                f"{file_report.updated} updated, {file_report.unchanged} unchanged, "
                f"{file_report.duplicates} duplicates, {file_report.rejected} rejected"
            )
        live = report.live_events
        self.stdout.write(
            f"  live events   {live['accepted']} accepted, {live['duplicates']} duplicates, "
            f"{live['rejected']} rejected (through the events API's service)"
        )
        self.stdout.write(self.style.MIGRATE_HEADING("\nIn the database"))
        self.stdout.write(
            f"  {report.users} end users, {report.items} items, {report.interactions} interactions"
        )
        self.stdout.write(f"  CSVs: {report.csv_paths['users'].parent}")
        self.stdout.write(
            "\nNext: `.venv/bin/python manage.py createsuperuser` and "
            "`.venv/bin/python manage.py runserver`, then open http://127.0.0.1:8000/admin/"
        )
