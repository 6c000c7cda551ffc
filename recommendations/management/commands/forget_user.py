from django.core.management.base import BaseCommand, CommandError

from recommendations.models import EndUser
from recommendations.services.erasure import user_forget


class Command(BaseCommand):
    help = (
        "Erase an end user (GDPR): their events, lists, segment memberships, deliveries, "
        "clicks, opens, conversions and unsubscribes, keeping reports' totals as anonymous "
        "counts and an unsubscribed address as a hashed suppression."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("user_id", help="The user's id (external id, as imported).")
        parser.add_argument(
            "--dry-run", action="store_true", help="Say what would be removed; change nothing."
        )

    def handle(self, *args, user_id: str, dry_run: bool, **options) -> None:
        user = EndUser.objects.filter(external_id=user_id).first()
        if user is None:
            raise CommandError(f"no end user with id {user_id!r} (already forgotten, or unknown)")
        report = user_forget(user=user, dry_run=dry_run)
        for line in report.lines():
            self.stdout.write(line)
        if dry_run:
            self.stdout.write(f"Dry run: end user {user_id!r} is unchanged.")
        else:
            self.stdout.write(self.style.SUCCESS(f"End user {user_id!r} is forgotten."))
