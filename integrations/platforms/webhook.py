"""A generic signed webhook: the batch as JSON, POSTed to a URL the receiver controls.

The `X-Recsite-Signature: t=<unix time>, v1=<hex>` header is HMAC-SHA256 with the shared
secret over `"<t>." + body`; receivers check it with `verify_signature`. The receiver may
answer per recipient, `{"results": [{"recipient_id", "status", "message_id", "error"}]}` with
status sent, failed or retryable; recipients it does not mention count as sent on a 2xx.
"""

import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import requests

from .base import (
    RETRYABLE,
    SENT,
    STATUSES,
    Message,
    PlatformAdapter,
    SendResult,
    http_error,
    results_for,
    status_for,
)

SIGNATURE_HEADER = "X-Recsite-Signature"
DEFAULT_TOLERANCE = 300  # seconds a signature stays valid


def signature(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp}, v1={signature(secret, timestamp, body)}"


def verify_signature(
    secret: str,
    header: str,
    body: bytes,
    *,
    now: float | None = None,
    tolerance: int = DEFAULT_TOLERANCE,
) -> bool:
    """True when `header` signs `body` with `secret` and is no older than `tolerance`."""
    parts = dict(part.strip().partition("=")[::2] for part in header.split(","))
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    return hmac.compare_digest(parts.get("v1", ""), signature(secret, timestamp, body))


def batch_key(batch: Sequence[Message]) -> str:
    """One idempotency key for the batch, from its delivery ids."""
    keys = "\n".join(sorted(str(m.idempotency_key) for m in batch))
    return hashlib.sha256(keys.encode()).hexdigest()


class WebhookAdapter(PlatformAdapter):
    name = "webhook"

    def __init__(self, *, url: str, secret: str, batch_size: int = 100, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if batch_size < 1:
            raise ValueError("webhook batch_size must be at least 1")
        self.url = url
        self.secret = secret
        self.max_batch = batch_size

    def send_batch(self, batch: Sequence[Message]) -> list[SendResult]:
        body = json.dumps({"messages": [asdict(m) for m in batch]}).encode()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": batch_key(batch),
            SIGNATURE_HEADER: signature_header(self.secret, int(self.retry.clock()), body),
        }
        response = self.request("POST", self.url, data=body, headers=headers)
        status = status_for(response)
        if status != SENT:
            return results_for(batch, status, error=f"webhook: {http_error(response)}")
        return per_recipient(batch, response)


def answered(response: requests.Response) -> dict[str, dict[str, Any]]:
    """The receiver's per-recipient answers, by recipient id; none if it sent no list."""
    try:
        entries = response.json().get("results", [])
    except (ValueError, AttributeError):
        return {}
    if not isinstance(entries, list):
        return {}
    return {str(e.get("recipient_id")): e for e in entries if isinstance(e, dict)}


def per_recipient(batch: Sequence[Message], response: requests.Response) -> list[SendResult]:
    answers = answered(response)
    return [result_from(m, answers.get(str(m.recipient_id))) for m in batch]


def result_from(message: Message, answer: dict[str, Any] | None) -> SendResult:
    if answer is None:
        return SendResult(message.recipient_id, SENT)
    status = answer.get("status", SENT)
    if status not in STATUSES:
        status = RETRYABLE
    error = "" if status == SENT else f"webhook: {answer.get('error', 'not delivered')}"
    return SendResult(message.recipient_id, status, str(answer.get("message_id", "")), error)
