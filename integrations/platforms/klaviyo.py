"""Klaviyo: each user's block upserted as a profile property with a bulk profile import job,
`POST /api/profile-bulk-import-jobs` (JSON:API, `application/vnd.api+json`).

A job takes at most 10,000 profiles and a 5 MB payload (100 KB per profile); batches are split
by count and then by encoded size, and a profile over 100 KB fails locally. Rate limits for the
endpoint: burst 10/s, steady 150/m, answered with 429 and `Retry-After`. Auth is
`Authorization: Klaviyo-API-Key <private key>` with a `revision` header pinning the API version.

Klaviyo answers 202 with the job, whose id is every recipient's `message_id`; the import runs
asynchronously and per-profile failures are only listed later at
`/api/profile-bulk-import-jobs/{id}/import-errors` (not polled here). A 400 whose JSON:API
errors point at particular profiles (`source.pointer` `/data/attributes/profiles/data/<i>/...`)
fails those recipients; the rest of that job were not imported and come back retryable.
"""

import json
import re
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

DEFAULT_BASE_URL = "https://a.klaviyo.com"
DEFAULT_REVISION = "2025-01-15"
DEFAULT_PROPERTY = "recsite_block"
MAX_PROFILES = 10_000
MAX_PAYLOAD_BYTES = 5_000_000  # "5MB", read conservatively as decimal megabytes
MAX_PROFILE_BYTES = 100_000  # "100KB" per profile
ENVELOPE_BYTES = 1_000  # job type, list relationship and JSON punctuation around the profiles
POINTER = re.compile(r"^/data/attributes/profiles/data/(\d+)(/|$)")


def encoded_size(value: Any) -> int:
    return len(json.dumps(value).encode())


class KlaviyoAdapter(PlatformAdapter):
    name = "klaviyo"
    max_batch = MAX_PROFILES

    def __init__(
        self,
        *,
        api_key: str,
        property_name: str = DEFAULT_PROPERTY,
        list_id: str = "",
        revision: str = DEFAULT_REVISION,
        base_url: str = DEFAULT_BASE_URL,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.api_key = api_key
        self.property_name = property_name
        self.list_id = list_id
        self.revision = revision
        self.max_payload_bytes = max_payload_bytes
        self.url = base_url.rstrip("/") + "/api/profile-bulk-import-jobs"

    def profile(self, message: Message) -> dict[str, Any]:
        return {
            "type": "profile",
            "attributes": {
                "email": message.email,
                "external_id": str(message.recipient_id),
                "properties": {
                    self.property_name: message.html,
                    f"{self.property_name}_subject": message.subject,
                    f"{self.property_name}_delivery_id": str(message.idempotency_key),
                },
            },
        }

    def payload(self, group: Sequence[Message]) -> dict[str, Any]:
        job: dict[str, Any] = {
            "type": "profile-bulk-import-job",
            "attributes": {"profiles": {"data": [self.profile(m) for m in group]}},
        }
        if self.list_id:
            job["relationships"] = {"lists": {"data": [{"type": "list", "id": self.list_id}]}}
        return {"data": job}

    def groups(self, batch: Sequence[Message]) -> tuple[list[list[int]], list[int]]:
        """Positions per request within the payload limit, and positions too large to send."""
        groups: list[list[int]] = []
        oversize: list[int] = []
        current: list[int] = []
        size = ENVELOPE_BYTES
        for position, message in enumerate(batch):
            profile_size = encoded_size(self.profile(message)) + 1
            if profile_size > MAX_PROFILE_BYTES:
                oversize.append(position)
                continue
            if current and size + profile_size > self.max_payload_bytes:
                groups.append(current)
                current, size = [], ENVELOPE_BYTES
            current.append(position)
            size += profile_size
        if current:
            groups.append(current)
        return groups, oversize

    def send_batch(self, batch: Sequence[Message]) -> list[SendResult]:
        groups, oversize = self.groups(batch)
        results: list[SendResult | None] = [None] * len(batch)
        for position in oversize:
            error = f"klaviyo: profile larger than {MAX_PROFILE_BYTES} bytes"
            results[position] = SendResult(batch[position].recipient_id, FAILED, error=error)
        for positions in groups:
            sent = self._post([batch[p] for p in positions])
            for position, result in zip(positions, sent, strict=True):
                results[position] = result
        return [result for result in results if result is not None]

    def _post(self, group: Sequence[Message]) -> list[SendResult]:
        response = self.request(
            "POST",
            self.url,
            data=json.dumps(self.payload(group)).encode(),
            headers={
                "Authorization": f"Klaviyo-API-Key {self.api_key}",
                "revision": self.revision,
                "Accept": "application/vnd.api+json",
                "Content-Type": "application/vnd.api+json",
            },
        )
        status = status_for(response)
        if status == SENT:
            return results_for(group, SENT, message_id=job_id(response))
        refused = refused_profiles(response) if status == FAILED else {}
        if not refused:
            return results_for(group, status, error=f"klaviyo: {http_error(response)}")
        return [
            SendResult(m.recipient_id, FAILED, error=f"klaviyo: {refused[i]}")
            if i in refused
            else SendResult(m.recipient_id, RETRYABLE, error="klaviyo: job refused for others")
            for i, m in enumerate(group)
        ]


def job_id(response: requests.Response) -> str:
    try:
        return str(response.json()["data"]["id"])
    except (ValueError, KeyError, TypeError):
        return ""


def refused_profiles(response: requests.Response) -> dict[int, str]:
    """Profiles a 400 points at, by position in the job, with Klaviyo's detail."""
    try:
        errors = response.json().get("errors") or []
    except (ValueError, AttributeError):
        return {}
    refused: dict[int, str] = {}
    for error in errors:
        if not isinstance(error, dict):
            continue
        source = error.get("source")
        pointer = source.get("pointer", "") if isinstance(source, dict) else ""
        match = POINTER.match(str(pointer))
        if match:
            detail = error.get("detail") or error.get("title") or "invalid profile"
            refused.setdefault(int(match.group(1)), str(detail))
    return refused
