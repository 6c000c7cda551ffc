"""SendGrid v3 Mail Send: `POST /v3/mail/send`, one personalization per recipient.

A request takes at most 1000 personalizations and one body (`content`) shared by all of them,
so messages are grouped by body; per-user bodies mean one request each. With a dynamic
`template_id` SendGrid renders each recipient from `merge_data` and a batch is one request.
SendGrid answers 202 with an `X-Message-Id` for the whole request.
"""

from collections.abc import Sequence
from typing import Any

from .base import (
    SENT,
    Message,
    PlatformAdapter,
    SendResult,
    http_error,
    results_for,
    status_for,
)

DEFAULT_BASE_URL = "https://api.sendgrid.com"
MAX_PERSONALIZATIONS = 1000


def personalization(message: Message, with_template: bool) -> dict[str, Any]:
    """The recipient, their subject and headers, and custom args that come back on events."""
    entry: dict[str, Any] = {
        "to": [{"email": message.email}],
        "subject": message.subject,
        "custom_args": {
            "recipient_id": str(message.recipient_id),
            "delivery_id": str(message.idempotency_key),
        },
    }
    if message.headers:
        entry["headers"] = dict(message.headers)
    if with_template:
        entry["dynamic_template_data"] = {"subject": message.subject, **message.merge_data}
    return entry


def content(message: Message) -> list[dict[str, str]]:
    """text/plain must come before text/html."""
    return [
        {"type": "text/plain", "value": message.text},
        {"type": "text/html", "value": message.html},
    ]


def body_groups(batch: Sequence[Message]) -> list[list[int]]:
    """Positions of the messages sharing one body, in first-seen order."""
    groups: dict[tuple[str, str], list[int]] = {}
    for position, message in enumerate(batch):
        groups.setdefault((message.text, message.html), []).append(position)
    return list(groups.values())


class SendGridAdapter(PlatformAdapter):
    name = "sendgrid"
    max_batch = MAX_PERSONALIZATIONS

    def __init__(
        self,
        *,
        api_key: str,
        from_email: str,
        from_name: str = "",
        template_id: str = "",
        base_url: str = DEFAULT_BASE_URL,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.api_key = api_key
        self.sender = {"email": from_email, **({"name": from_name} if from_name else {})}
        self.template_id = template_id
        self.url = base_url.rstrip("/") + "/v3/mail/send"

    def send_batch(self, batch: Sequence[Message]) -> list[SendResult]:
        groups = [list(range(len(batch)))] if self.template_id else body_groups(batch)
        results: list[SendResult | None] = [None] * len(batch)
        for positions in groups:
            sent = self._post([batch[p] for p in positions])
            for position, result in zip(positions, sent, strict=True):
                results[position] = result
        return [result for result in results if result is not None]

    def payload(self, group: Sequence[Message]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "personalizations": [personalization(m, bool(self.template_id)) for m in group],
            "from": self.sender,
        }
        if self.template_id:
            body["template_id"] = self.template_id
        else:
            body["content"] = content(group[0])
        return body

    def _post(self, group: Sequence[Message]) -> list[SendResult]:
        response = self.request(
            "POST",
            self.url,
            json=self.payload(group),
            headers={"Authorization": f"Bearer {self.api_key}"},
        )
        status = status_for(response)
        if status == SENT:
            return results_for(group, SENT, message_id=response.headers.get("X-Message-Id", ""))
        return results_for(group, status, error=f"sendgrid: {http_error(response)}")
