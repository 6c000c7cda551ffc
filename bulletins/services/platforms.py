"""The platform adapter a bulletin sends through."""

import os

from django.conf import settings

from bulletins.models import Bulletin, PlatformConnection
from integrations.platforms import PlatformAdapter, adapter

# Adapters that take the sender address (the others send from the platform's own settings).
TAKES_FROM_EMAIL = {"smtp", "sendgrid"}


class PlatformNotConfigured(ValueError):
    """The bulletin's platform cannot be used: a missing secret or a bad option."""


def platform_config(connection: PlatformConnection | None) -> dict:
    if connection is None:
        return dict(getattr(settings, "EMAIL_PLATFORM", {}) or {"name": "smtp"})
    config = {"name": connection.kind, **connection.options}
    argument = PlatformConnection.SECRET_ARGUMENT.get(connection.kind)
    if argument:
        secret = os.environ.get(connection.credential_env, "")
        if not secret:
            raise PlatformNotConfigured(
                f"platform {connection.name!r}: the environment variable "
                f"{connection.credential_env or '(none named)'} holding its secret is not set"
            )
        config[argument] = secret
    return config


def bulletin_adapter(bulletin: Bulletin) -> PlatformAdapter:
    config = platform_config(bulletin.platform)
    if bulletin.from_email and config.get("name", "smtp") in TAKES_FROM_EMAIL:
        config["from_email"] = bulletin.from_email
    try:
        return adapter(config)
    except (TypeError, ValueError) as error:
        raise PlatformNotConfigured(f"platform for {bulletin.slug!r}: {error}") from error
