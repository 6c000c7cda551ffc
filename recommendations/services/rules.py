"""Marketer rules and segment conditions from the database, as the engine's objects."""

from typing import Any

from django.core.exceptions import ValidationError

from recommendations.engine.conditions import Condition as EngineCondition
from recommendations.engine.errors import EngineError
from recommendations.engine.segments import ACTIVITY_COLUMNS, AFFINITY_PREFIX
from recommendations.models import Condition, EndUser, Item

ITEM_FIELDS = {"item_id", "title", "categories", "tags", "price", "available", "published_at"}
LIST_OPERATORS = {Condition.Operator.IN, Condition.Operator.BETWEEN}
TRUE_WORDS, FALSE_WORDS = {"true", "yes"}, {"false", "no"}


def condition_value_parse(operator: str, text: str) -> Any:
    """The value a marketer typed, as the engine compares it: lists for 'in' and 'between',
    numbers as numbers, true/false as booleans, anything else as text."""
    if operator in LIST_OPERATORS:
        return [_scalar(part) for part in text.split(",") if part.strip()]
    return _scalar(text)


def _scalar(text: str) -> Any:
    text = text.strip()
    if text.lower() in TRUE_WORDS | FALSE_WORDS:
        return text.lower() in TRUE_WORDS
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text else number


def condition_to_engine(condition: Condition) -> EngineCondition:
    """Raises ValidationError naming the field when the condition cannot be used."""
    try:
        return EngineCondition(
            condition.field.strip(),
            condition.operator,
            condition_value_parse(condition.operator, condition.value),
        )
    except EngineError as error:
        raise ValidationError({"value": str(error)}) from None


def item_condition_field_check(field: str) -> None:
    """An item condition must name an item field or an attribute some item has."""
    field = field.strip()
    if field in ITEM_FIELDS or Item.objects.filter(attributes__has_key=field).exists():
        return
    raise ValidationError(
        {
            "field": f"No item has a field or attribute {field!r}; item fields are "
            f"{', '.join(sorted(ITEM_FIELDS))}."
        }
    )


def segment_condition_field_check(field: str) -> None:
    """A segment condition must name a behaviour feature, the affinity to a category some
    item has, or an attribute some user has."""
    field = field.strip()
    if field in ACTIVITY_COLUMNS or EndUser.objects.filter(attributes__has_key=field).exists():
        return
    if field.startswith(AFFINITY_PREFIX):
        category = field.removeprefix(AFFINITY_PREFIX)
        categories = Item.objects.values_list("categories", flat=True).iterator()
        if category == "other" or any(category in (listed or []) for listed in categories):
            return
    raise ValidationError(
        {
            "field": f"No user has a feature or attribute {field!r}; use one of "
            f"{', '.join(ACTIVITY_COLUMNS)}, {AFFINITY_PREFIX}<category> or a user attribute."
        }
    )
