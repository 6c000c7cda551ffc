"""The one interface every marketing platform sits behind: `send(messages) -> results`.

An adapter turns a list of per-user `Message`s into one `SendResult` per recipient. It splits
the list into the platform's batch size and retries throttling (429) and server errors (5xx)
with jittered exponential backoff, honouring `Retry-After` and `X-RateLimit-Reset`. Recipients
that may succeed later come back `retryable`; a retry sends only those. With
`requests_per_second` an adapter spaces its requests to stay under the platform's limit.
"""

import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import requests

SENT = "sent"
FAILED = "failed"
RETRYABLE = "retryable"
STATUSES = {SENT, FAILED, RETRYABLE}
RETRY_STATUS_CODES = {429, 500, 502, 503, 504}
EPOCH_THRESHOLD = 1_000_000_000  # a reset header above this is a Unix time, below it seconds


class PlatformError(Exception):
    """A batch the platform did not take; `retryable` says whether it may succeed later."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class Message:
    """One rendered email for one recipient. `idempotency_key` is the delivery id;
    `merge_data` feeds platforms that render their own templates."""

    recipient_id: str
    email: str
    subject: str
    html: str
    text: str
    idempotency_key: str
    headers: dict[str, str] = field(default_factory=dict)
    merge_data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SendResult:
    recipient_id: str
    status: str
    message_id: str = ""
    error: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown send status {self.status!r}")

    @property
    def retryable(self) -> bool:
        return self.status == RETRYABLE


def results_for(
    messages: Sequence[Message], status: str, *, message_id: str = "", error: str = ""
) -> list[SendResult]:
    """The same outcome for every recipient of a batch."""
    return [SendResult(m.recipient_id, status, message_id, error) for m in messages]


def chunks(messages: Sequence[Message], size: int) -> Iterator[Sequence[Message]]:
    for start in range(0, len(messages), size):
        yield messages[start : start + size]


@dataclass
class RetryPolicy:
    """How long to keep trying one request. `sleep`, `clock` and `jitter` are injectable so
    tests neither wait nor depend on chance."""

    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 30.0
    max_total_wait: float = 120.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time
    jitter: Callable[[], float] = random.random

    def backoff(self, attempt: int) -> float:
        """Full jitter: a random wait up to base * 2^(attempt-1), capped at max_delay."""
        return self.jitter() * min(self.max_delay, self.base_delay * 2 ** (attempt - 1))


def _seconds(value: str) -> float | None:
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _retry_after(value: str, now: float) -> float | None:
    """Retry-After is either delta seconds or an HTTP date."""
    seconds = _seconds(value)
    if seconds is not None:
        return seconds
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError, IndexError):
        return None


def _rate_limit_reset(value: str, now: float) -> float | None:
    """X-RateLimit-Reset is a Unix time (SendGrid, GitHub) or seconds to wait (others)."""
    seconds = _seconds(value)
    if seconds is None:
        return None
    return max(0.0, seconds - now) if seconds > EPOCH_THRESHOLD else seconds


def server_delay(response: requests.Response, now: float) -> float | None:
    """The wait the platform asked for, if it said: Retry-After first, then reset headers."""
    headers = response.headers
    if "Retry-After" in headers:
        delay = _retry_after(headers["Retry-After"], now)
        if delay is not None:
            return delay
    for name in ("X-RateLimit-Reset", "RateLimit-Reset"):
        if response.status_code == 429 and name in headers:
            delay = _rate_limit_reset(headers[name], now)
            if delay is not None:
                return delay
    return None


def http_error(response: requests.Response) -> str:
    return f"HTTP {response.status_code}: {response.text[:300]}".rstrip(": ")


def status_for(response: requests.Response) -> str:
    """sent for 2xx, retryable for throttling and server errors, failed otherwise."""
    if response.ok:
        return SENT
    return RETRYABLE if response.status_code in RETRY_STATUS_CODES else FAILED


class PlatformAdapter(ABC):
    """A marketing platform. Subclasses set `name` and `max_batch` and implement `send_batch`,
    which answers one result per message of a batch no larger than `max_batch`."""

    name: ClassVar[str]
    max_batch: int = 100

    def __init__(
        self,
        *,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        timeout: float = 30.0,
        requests_per_second: float | None = None,
    ) -> None:
        if requests_per_second is not None and not requests_per_second > 0:
            raise ValueError(f"requests_per_second must be above 0, got {requests_per_second!r}")
        self.retry = retry or RetryPolicy()
        self.session = session or requests.Session()
        self.timeout = timeout
        # Pacing below the platform's rate limit costs less than being throttled: a 429's
        # whole-second Retry-After idles the sender far longer than an even spacing would.
        self.min_interval = 1 / requests_per_second if requests_per_second else 0.0
        self._next_request_at = 0.0
        self._pace_lock = threading.Lock()

    def send(self, messages: Sequence[Message]) -> list[SendResult]:
        results: list[SendResult] = []
        for batch in chunks(messages, self.max_batch):
            results.extend(self._send_one_batch(batch))
        return results

    def _send_one_batch(self, batch: Sequence[Message]) -> list[SendResult]:
        try:
            results = self.send_batch(batch)
        except PlatformError as error:
            status = RETRYABLE if error.retryable else FAILED
            return results_for(batch, status, error=f"{self.name}: {error}")
        if len(results) != len(batch):
            raise AssertionError(f"{self.name}: {len(results)} results for {len(batch)} messages")
        return results

    @abstractmethod
    def send_batch(self, batch: Sequence[Message]) -> list[SendResult]: ...

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """An HTTP call retried on 429, 5xx and connection errors, within `max_attempts` and
        `max_total_wait`. Answers the last response (which may still be a 429 or 5xx); raises
        a retryable PlatformError when the platform never answered."""
        kwargs.setdefault("timeout", self.timeout)
        waited = 0.0
        for attempt in range(1, self.retry.max_attempts + 1):
            response, error = self._attempt(method, url, **kwargs)
            if response is not None and response.status_code not in RETRY_STATUS_CODES:
                return response
            delay = self._delay(response, attempt)
            last = attempt == self.retry.max_attempts
            if last or waited + delay > self.retry.max_total_wait:
                break
            self.retry.sleep(delay)
            waited += delay
        if response is None:
            raise PlatformError(f"no answer from {url} ({error})", retryable=True)
        return response

    def _pace(self) -> None:
        """Wait until this request keeps to `requests_per_second` (shared by threads)."""
        if not self.min_interval:
            return
        with self._pace_lock:
            now = self.retry.clock()
            wait = self._next_request_at - now
            self._next_request_at = max(now, self._next_request_at) + self.min_interval
        if wait > 0:
            self.retry.sleep(wait)

    def _attempt(
        self, method: str, url: str, **kwargs: Any
    ) -> tuple[requests.Response | None, Exception | None]:
        self._pace()
        try:
            return self.session.request(method, url, **kwargs), None
        except (requests.ConnectionError, requests.Timeout) as error:
            return None, error

    def _delay(self, response: requests.Response | None, attempt: int) -> float:
        asked = server_delay(response, self.retry.clock()) if response is not None else None
        return asked if asked is not None else self.retry.backoff(attempt)
