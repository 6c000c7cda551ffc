"""Parsing and checking values that arrive from outside (the events API, CSV import, click
tracking, identify): one set of rules, so a value means the same thing whichever way it came,
and every refusal names the field."""

import hashlib
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

MAX_ID_LENGTH = 255
MAX_FUTURE_SKEW = timedelta(days=1)


class InvalidValue(ValueError):
    """A value that cannot be used; the message says why, for the error report. `field`
    names the field when the message cannot start with it (a field name of the client's)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def text_check(text: str, name: str) -> str:
    """`text`, or InvalidValue if no database can store it: a NUL character (PostgreSQL) or
    a lone surrogate (not UTF-8 at all)."""
    if "\x00" in text:
        raise InvalidValue(f"{name} contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidValue(f"{name} contains an unpaired surrogate (not valid Unicode)") from None
    return text


def json_check(value: Any, name: str) -> Any:
    """`value` (parsed JSON), or InvalidValue if a database cannot store it: unstorable text
    in a key or a string, or NaN/Infinity (not JSON; PostgreSQL refuses them)."""
    if isinstance(value, str):
        text_check(value, name)
    elif isinstance(value, float) and not math.isfinite(value):
        raise InvalidValue(f"{name} holds {value!r}, which is not JSON")
    elif isinstance(value, list):
        for item in value:
            json_check(item, name)
    elif isinstance(value, dict):
        for key, item in value.items():
            text_check(key, name)
            json_check(item, name)
    return value


def timestamp_parse(value: Any) -> datetime:
    """Unix seconds (a number or a numeric string) or ISO 8601, as an aware UTC datetime."""
    if isinstance(value, bool) or value is None or value == "":
        raise InvalidValue("a timestamp is required (unix seconds or ISO 8601)")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an integer past the float range
            raise InvalidValue("timestamp is out of range") from None
    else:
        text = str(value).strip()
        try:
            seconds = float(text)
        except ValueError:
            try:
                parsed = parse_datetime(text)
            except ValueError as error:  # well formed, but no such date, time or offset
                raise InvalidValue(f"impossible timestamp {text[:40]!r}: {error}") from None
            if parsed is None:
                raise InvalidValue(
                    f"unparsable timestamp {text[:40]!r}: use unix seconds or ISO 8601"
                ) from None
            if timezone.is_naive(parsed):
                parsed = parsed.replace(tzinfo=UTC)
            try:
                return parsed.astimezone(UTC)
            except OverflowError:  # before year 1 or after 9999 once in UTC
                raise InvalidValue(f"timestamp {text[:40]!r} is out of range") from None
    if not math.isfinite(seconds) or not 0 <= seconds < 253402300800:
        raise InvalidValue(f"timestamp {str(value)[:40]!r} is out of range")
    return datetime.fromtimestamp(seconds, tz=UTC)


def external_id_clean(value: Any, name: str) -> str:
    if value is None or isinstance(value, bool | dict | list | float):
        raise InvalidValue(f"{name} must be a string or an integer")
    text = str(value).strip()
    if not text:
        raise InvalidValue(f"{name} is required")
    if len(text) > MAX_ID_LENGTH:
        raise InvalidValue(f"{name} is longer than {MAX_ID_LENGTH} characters")
    return text_check(text, name)


def event_value_clean(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidValue("event_value must be a number")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidValue(f"event_value {str(value)[:40]!r} is not a number") from None
    if not math.isfinite(number):
        raise InvalidValue("event_value must be finite")
    return number


def event_id_derive(
    *, user_id: str, item_id: str, event_type: str, timestamp: datetime, event_value: float | None
) -> str:
    """A stable id for an event sent without one, so replays of the same event stay idempotent."""
    key = "\x1f".join(
        [
            user_id,
            item_id,
            event_type,
            timestamp.isoformat(),
            "" if event_value is None else repr(event_value),
        ]
    )
    return "derived:" + hashlib.sha256(key.encode()).hexdigest()[:40]
