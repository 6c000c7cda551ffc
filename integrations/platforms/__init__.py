"""Marketing platforms behind one interface, `adapter().send(messages) -> results`.

`settings.EMAIL_PLATFORM` chooses one: {"name": "sendgrid", "api_key": ..., ...}; the other
keys go to the adapter. Without it mail goes through Django's email backend. Vendor modules
are imported only when chosen.
"""

from importlib import import_module
from typing import Any

from django.conf import settings

from .base import FAILED, RETRYABLE, SENT, Message, PlatformAdapter, PlatformError, SendResult

ADAPTERS = {
    "smtp": "integrations.platforms.smtp.SmtpAdapter",
    "sendgrid": "integrations.platforms.sendgrid.SendGridAdapter",
    "webhook": "integrations.platforms.webhook.WebhookAdapter",
    "mailchimp": "integrations.platforms.mailchimp.MailchimpAdapter",
    "braze": "integrations.platforms.braze.BrazeAdapter",
    "klaviyo": "integrations.platforms.klaviyo.KlaviyoAdapter",
}

__all__ = [
    "FAILED",
    "RETRYABLE",
    "SENT",
    "Message",
    "PlatformAdapter",
    "PlatformError",
    "SendResult",
    "adapter",
]


def adapter(config: dict[str, Any] | None = None, **overrides: Any) -> PlatformAdapter:
    """The configured adapter (`settings.EMAIL_PLATFORM`, or `config`), SMTP by default."""
    options = dict(config if config is not None else getattr(settings, "EMAIL_PLATFORM", {}))
    options.update(overrides)
    name = options.pop("name", "smtp")
    if name not in ADAPTERS:
        raise ValueError(f"unknown email platform {name!r} (known: {', '.join(ADAPTERS)})")
    module, _, cls = ADAPTERS[name].rpartition(".")
    return getattr(import_module(module), cls)(**options)
