"""Fixtures for the platform adapters: messages, and a retry policy that records its sleeps
instead of waiting."""

import pytest

from integrations.platforms.base import Message, RetryPolicy

NOW = 1_700_000_000.0


def make_message(n: int, **fields) -> Message:
    defaults = {
        "recipient_id": f"u{n}",
        "email": f"user{n}@example.com",
        "subject": f"Picks for user {n}",
        "html": f"<p>Hello {n}</p>",
        "text": f"Hello {n}",
        "idempotency_key": f"d{n}",
        "headers": {
            "List-Unsubscribe": f"<https://example.com/u/{n}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        "merge_data": {"first_name": f"N{n}"},
    }
    return Message(**{**defaults, **fields})


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def retry(sleeps) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=4,
        base_delay=1.0,
        max_delay=8.0,
        max_total_wait=60.0,
        sleep=sleeps,
        clock=lambda: NOW,
        jitter=lambda: 0.5,
    )
