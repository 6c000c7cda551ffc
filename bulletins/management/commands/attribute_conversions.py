from django.core.management.base import BaseCommand

from bulletins.services.attribution import conversions_backfill


class Command(BaseCommand):
    help = (
        "Attribute the conversion events of the last N days that are not attributed yet "
        "(imported events; events are attributed as they arrive through the events API)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--days", type=int, default=30)

    def handle(self, *args, days: int, **options) -> None:
        attributed = conversions_backfill(days=days)
        self.stdout.write(f"{attributed} conversion(s) attributed to the clicks before them.")
