"""Mailchimp Marketing API: each user's rendered block upserted as a merge field on their list
member, `POST /3.0/lists/{list_id}` (batch subscribe or unsubscribe list members).

A call carries at most 500 `members`; `update_existing: true` makes it an upsert. Auth is HTTP
Basic `anystring:<api key>`; the base URL is `https://<dc>.api.mailchimp.com`, where `<dc>` is
the key's suffix (`...-us6`), overridable with `base_url`. Mailchimp limits the Marketing API by
concurrency (10 simultaneous connections per user) rather than by a published per-minute quota,
answers 429 when exceeded and sends no rate-limit headers, so the shared jittered backoff
applies. The call answers 200 even when some members were refused; those are in `errors`
(`email_address`, `error`, `error_code`) and become per-recipient results here.

Caveats:
* `update_existing` also applies `status` to existing members, so only pass recipients the
  project may mail; Mailchimp refuses to re-subscribe members who unsubscribed (a per-member
  error, mapped to failed).
* Text merge fields hold 255 characters, so the block must be short (a link, a few titles) or
  split across fields by the caller; longer blocks are refused locally as failed.
* Sending the campaign that uses the merge field is out of scope: this only stages the content.

`message_id` is the member's subscriber hash (MD5 of the lower-cased address), Mailchimp's id.
"""

import hashlib
from collections.abc import Sequence
from typing import Any

import requests

from .base import (
    FAILED,
    RETRYABLE,
    SENT,
    Message,
    PlatformAdapter,
    SendResult,
    http_error,
    results_for,
    status_for,
)

MAX_MEMBERS = 500
MAX_MERGE_FIELD_LENGTH = 255
DEFAULT_BLOCK_FIELD = "RECS"
# Mailchimp's catch-all per-member code; the specific ones (invalid or fake address, compliance
# state after an unsubscribe, merge field validation) will not succeed on a resend.
RETRYABLE_ERROR_CODES = {"ERROR_GENERIC"}


def subscriber_hash(email: str) -> str:
    return hashlib.md5(email.strip().lower().encode()).hexdigest()  # noqa: S324 - Mailchimp's id


def base_url_for(api_key: str) -> str:
    """`https://<dc>.api.mailchimp.com` from a key ending in `-<dc>`."""
    key, _, dc = api_key.rpartition("-")
    if not key or not dc:
        raise ValueError("Mailchimp API key has no data center suffix; pass base_url")
    return f"https://{dc}.api.mailchimp.com"


class MailchimpAdapter(PlatformAdapter):
    name = "mailchimp"
    max_batch = MAX_MEMBERS

    def __init__(
        self,
        *,
        api_key: str,
        list_id: str,
        block_field: str = DEFAULT_BLOCK_FIELD,
        subject_field: str = "",
        status: str = "subscribed",
        max_field_length: int = MAX_MERGE_FIELD_LENGTH,
        base_url: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.api_key = api_key
        self.block_field = block_field
        self.subject_field = subject_field
        self.status = status
        self.max_field_length = max_field_length
        root = (base_url or base_url_for(api_key)).rstrip("/")
        self.url = f"{root}/3.0/lists/{list_id}"

    def member(self, message: Message) -> dict[str, Any]:
        merge_fields = {self.block_field: message.html}
        if self.subject_field:
            merge_fields[self.subject_field] = message.subject
        return {"email_address": message.email, "status": self.status, "merge_fields": merge_fields}

    def too_long(self, message: Message) -> bool:
        fields = self.member(message)["merge_fields"].values()
        return any(len(value) > self.max_field_length for value in fields)

    def send_batch(self, batch: Sequence[Message]) -> list[SendResult]:
        fits = [m for m in batch if not self.too_long(m)]
        sent = {id(m): r for m, r in zip(fits, self._post(fits), strict=True)} if fits else {}
        refused = f"mailchimp: merge field longer than {self.max_field_length} characters"
        return [sent.get(id(m)) or SendResult(m.recipient_id, FAILED, error=refused) for m in batch]

    def _post(self, members: Sequence[Message]) -> list[SendResult]:
        response = self.request(
            "POST",
            self.url,
            json={"members": [self.member(m) for m in members], "update_existing": True},
            auth=("anystring", self.api_key),
        )
        status = status_for(response)
        if status != SENT:
            return results_for(members, status, error=f"mailchimp: {http_error(response)}")
        errors = member_errors(response)
        return [result_for(m, errors.get(m.email.strip().lower())) for m in members]


def member_errors(response: requests.Response) -> dict[str, dict[str, Any]]:
    """The refused members by lower-cased address."""
    try:
        entries = response.json().get("errors") or []
    except (ValueError, AttributeError):
        return {}
    return {
        str(e.get("email_address", "")).strip().lower(): e for e in entries if isinstance(e, dict)
    }


def result_for(message: Message, error: dict[str, Any] | None) -> SendResult:
    member_id = subscriber_hash(message.email)
    if error is None:
        return SendResult(message.recipient_id, SENT, member_id)
    code = str(error.get("error_code", ""))
    status = RETRYABLE if code in RETRYABLE_ERROR_CODES else FAILED
    detail = f"mailchimp: {error.get('error', 'member refused')}" + (f" ({code})" if code else "")
    return SendResult(message.recipient_id, status, member_id, detail)
