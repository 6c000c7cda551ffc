from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from recommendations.models import ApiKey
from recommendations.services.api_keys import api_key_create


class Command(BaseCommand):
    help = "Create an API key and print it once (only its hash is stored)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--kind", required=True, choices=ApiKey.Kind.values)
        parser.add_argument(
            "--origin",
            action="append",
            default=[],
            dest="origins",
            help="An allowed origin for a public key (repeatable), e.g. https://example.com",
        )

    def handle(self, *args, name: str, kind: str, origins: list[str], **options) -> None:
        try:
            api_key, raw_key = api_key_create(name=name, kind=kind, allowed_origins=origins)
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None
        if kind == ApiKey.Kind.SECRET:
            self.stderr.write(f"Created {api_key}. Store the key now; it cannot be shown again.")
        else:
            self.stderr.write(f"Created {api_key}. Admin shows it with the embed snippet.")
        self.stdout.write(raw_key)
