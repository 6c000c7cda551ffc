"""Email through Django's own backend: SMTP, or the file/console backend in development.

`get_connection()` follows `settings.EMAIL_BACKEND`, so configuration picks where mail goes.
One connection serves a batch; each message gets its own result.
"""

import smtplib
from collections.abc import Sequence
from email.utils import parseaddr

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.utils import DNS_NAME

from .base import FAILED, RETRYABLE, SENT, Message, PlatformAdapter, SendResult, results_for

DELIVERY_HEADER = "X-Recsite-Delivery"


def message_id_for(message: Message, from_email: str) -> str:
    """The same Message-ID every time a delivery is sent, made from its idempotency key: a
    copy sent again after a crash is recognisably the same message, which receivers use to
    drop duplicates."""
    domain = parseaddr(from_email)[1].rpartition("@")[2] or str(DNS_NAME)
    key = "".join(c if c.isalnum() or c in "-_." else "_" for c in message.idempotency_key)
    return f"<{key}.recsite@{domain}>"


def email_message(message: Message, from_email: str) -> EmailMultiAlternatives:
    """Both parts (text first, HTML as the alternative), the message's own headers, the
    delivery id and a Message-ID made from it, so the result can name it."""
    headers = {
        "Message-ID": message_id_for(message, from_email),
        **message.headers,
        DELIVERY_HEADER: message.idempotency_key,
    }
    email = EmailMultiAlternatives(
        message.subject, message.text, from_email, [message.email], headers=headers
    )
    email.attach_alternative(message.html, "text/html")
    return email


def smtp_status(error: Exception) -> str:
    """4xx SMTP answers and dropped connections may pass later; 5xx answers will not."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        return RETRYABLE if codes and all(400 <= code < 500 for code in codes) else FAILED
    if isinstance(error, smtplib.SMTPResponseException):
        return RETRYABLE if 400 <= error.smtp_code < 500 else FAILED
    return RETRYABLE  # disconnected, refused, timed out


class SmtpAdapter(PlatformAdapter):
    name = "smtp"
    max_batch = 100

    def __init__(self, *, from_email: str = "", backend: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.from_email = from_email or settings.DEFAULT_FROM_EMAIL
        self.backend = backend

    def send_batch(self, batch: Sequence[Message]) -> list[SendResult]:
        connection = get_connection(self.backend, fail_silently=False)
        try:
            connection.open()
        except (OSError, smtplib.SMTPException) as error:
            return results_for(batch, smtp_status(error), error=f"smtp: cannot connect ({error})")
        try:
            return [self._send_one(connection, message) for message in batch]
        finally:
            connection.close()

    def _send_one(self, connection, message: Message) -> SendResult:
        email = email_message(message, self.from_email)
        email.connection = connection
        try:
            email.send()
        except (OSError, smtplib.SMTPException) as error:
            return SendResult(message.recipient_id, smtp_status(error), error=f"smtp: {error}")
        message_id = email.extra_headers["Message-ID"]
        return SendResult(message.recipient_id, SENT, message_id=message_id)
