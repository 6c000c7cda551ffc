"""Cell parsers: a cell's text to a field value, or InvalidValue saying why not."""

import math
import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email

from recsite.validation import InvalidValue, timestamp_parse

PLAIN_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
LEADING_ZERO_NUMBER = re.compile(r"-?0[0-9]+(?:\.[0-9]+)?")
TRUE_WORDS = {"true", "t", "yes", "y", "1"}
FALSE_WORDS = {"false", "f", "no", "n", "0"}


def text(max_length: int | None) -> Callable[[str], str]:
    def parse(cell: str) -> str:
        text = cell.strip()
        if max_length and len(text) > max_length:
            raise InvalidValue(f"longer than {max_length} characters")
        return text

    return parse


def url(cell: str) -> str:
    text = cell.strip()
    if text:
        try:
            URLValidator()(text)
        except ValidationError:
            raise InvalidValue(f"{text[:60]!r} is not a valid URL") from None
        if len(text) > 2000:
            raise InvalidValue("longer than 2000 characters")
    return text


def email(cell: str) -> str:
    text = cell.strip()
    if text:
        try:
            validate_email(text)
        except ValidationError:
            raise InvalidValue(f"{text[:60]!r} is not a valid email address") from None
        if len(text) > 254:
            raise InvalidValue("longer than 254 characters")
    return text


def boolean(default: bool) -> Callable[[str], bool]:
    def parse(cell: str) -> bool:
        word = cell.strip().lower()
        if not word:
            return default
        if word in TRUE_WORDS | FALSE_WORDS:
            return word in TRUE_WORDS
        raise InvalidValue(f"{cell[:20]!r} is not true/false, 1/0 or yes/no")

    return parse


def pipe_list(cell: str) -> list[str]:
    return [part.strip() for part in cell.split("|") if part.strip()]


def price(cell: str) -> Decimal | None:
    text = cell.strip()
    if not text:
        return None
    try:
        price = Decimal(text)
    except InvalidOperation:
        raise InvalidValue(f"{text[:20]!r} is not a number") from None
    if not price.is_finite() or price < 0 or price >= 10**10:
        raise InvalidValue(f"{text[:20]!r} is not a price from 0 to 9999999999.99")
    if price.as_tuple().exponent < -2:
        raise InvalidValue(f"{text[:20]!r} has more than 2 decimal places")
    return price


def moment(cell: str) -> datetime | None:
    text = cell.strip()
    return timestamp_parse(text) if text else None


def number(text: str) -> int | float | str:
    """A plain number's value; the text itself when it has no value JSON keeps: more digits
    than int() converts (4,300), or a decimal past the float range."""
    try:
        value = float(text) if "." in text else int(text)
    except ValueError:
        return text
    return value if isinstance(value, int) or math.isfinite(value) else text
