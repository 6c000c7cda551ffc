"""Braze: each user's block set as a custom attribute with `POST /users/track`.

A request carries at most 75 `attributes` objects (75 attributes, events and purchases combined
per request on current limits), each `{"external_id": <recipient id>, <attribute>: <block>}`;
the rate limit is 3,000 requests per three seconds per workspace, answered with 429 and
`X-RateLimit-Reset`. Auth is `Authorization: Bearer <REST API key>`; the base URL is the
instance's REST endpoint (`https://rest.iad-01.braze.com` and so on). Braze answers 201
`{"message": "success", "errors": [...]}` when some objects were refused; each error names the
`input_array` and `index` it refers to, and those recipients come back failed.

The attribute is a nested custom attribute (an object: subject, html, text, delivery id):
flat custom attribute strings are cut at 255 characters, so a rendered block does not fit one.
For blocks too large for a profile, a Braze message can instead fetch the block at send time
with Connected Content; `connected_content` builds the JSON that endpoint serves.
Braze has no per-recipient id for an attribute update, so `message_id` is empty.
"""

from collections.abc import Sequence
from typing import Any

import requests

from .base import (
    FAILED,
    SENT,
    Message,
    PlatformAdapter,
    SendResult,
    http_error,
    results_for,
    status_for,
)

MAX_ATTRIBUTES = 75
DEFAULT_ATTRIBUTE = "recsite_block"


def block(message: Message) -> dict[str, str]:
    return {
        "subject": message.subject,
        "html": message.html,
        "text": message.text,
        "delivery_id": str(message.idempotency_key),
    }


def connected_content(message: Message) -> dict[str, Any]:
    """The JSON a Braze message fetches for one user with `{% connected_content ... :save b %}`
    and reads as `{{b.html}}`, `{{b.subject}}`, `{{b.merge.first_name}}`."""
    return {
        "recipient_id": str(message.recipient_id),
        **block(message),
        "merge": dict(message.merge_data),
    }


class BrazeAdapter(PlatformAdapter):
    name = "braze"
    max_batch = MAX_ATTRIBUTES

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        attribute: str = DEFAULT_ATTRIBUTE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.api_key = api_key
        self.attribute = attribute
        self.url = base_url.rstrip("/") + "/users/track"

    def payload(self, batch: Sequence[Message]) -> dict[str, Any]:
        return {
            "attributes": [
                {"external_id": str(m.recipient_id), self.attribute: block(m)} for m in batch
            ]
        }

    def send_batch(self, batch: Sequence[Message]) -> list[SendResult]:
        response = self.request(
            "POST",
            self.url,
            json=self.payload(batch),
            headers={"Authorization": f"Bearer {self.api_key}"},
        )
        status = status_for(response)
        if status != SENT:
            return results_for(batch, status, error=f"braze: {http_error(response)}")
        refused = attribute_errors(response)
        return [
            SendResult(m.recipient_id, FAILED, error=f"braze: {refused[i]}")
            if i in refused
            else SendResult(m.recipient_id, SENT)
            for i, m in enumerate(batch)
        ]


def attribute_errors(response: requests.Response) -> dict[int, str]:
    """The refused `attributes` objects by index, with Braze's reason."""
    try:
        entries = response.json().get("errors") or []
    except (ValueError, AttributeError):
        return {}
    refused = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("input_array", "attributes") != "attributes":
            continue
        index = entry.get("index")
        if isinstance(index, int):
            refused[index] = str(entry.get("type", "refused"))
    return refused
