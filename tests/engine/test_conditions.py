import pandas as pd
import pytest

from recommendations.engine.conditions import Condition, condition_mask, conditions_mask
from recommendations.engine.errors import EngineError


@pytest.fixture
def items():
    return pd.DataFrame(
        {
            "item_id": ["a", "b", "c", "d"],
            "categories": [["Cooking", "Food"], ["Travel"], [], ["cooking"]],
            "price": [10.0, None, 30.0, 5.0],
            "available": [True, False, True, True],
            "published_at": pd.to_datetime(
                ["2026-01-01", "2026-06-01", None, "2026-11-01"], utc=True
            ),
            "title": ["Sourdough", "Rome", "X", "Stock"],
            "year": ["1995", "V", None, "2001"],
        }
    )


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (Condition("categories", "equals", "cooking"), [True, False, False, True]),
        (Condition("categories", "in", ["Travel", "Food"]), [True, True, False, False]),
        (Condition("categories", "not_equals", "Cooking"), [False, True, True, False]),
        (Condition("price", "lt", 20), [True, False, False, True]),
        (Condition("price", "gt", 20), [False, False, True, False]),
        (Condition("price", "between", [5, 10]), [True, False, False, True]),
        (Condition("available", "equals", False), [False, True, False, False]),
        (Condition("published_at", "gt", "2026-05-01"), [False, True, False, True]),
        (Condition("title", "contains", "DOUGH"), [True, False, False, False]),
        (Condition("year", "gt", 2000), [False, False, False, True]),
        (Condition("item_id", "in", ["a", "d"]), [True, False, False, True]),
    ],
)
def test_each_operator_matches_the_expected_rows(items, condition, expected):
    assert condition_mask(items, condition).tolist() == expected


def test_all_conditions_must_hold(items):
    conditions = [Condition("categories", "equals", "cooking"), Condition("price", "lt", 8)]
    assert conditions_mask(items, conditions).tolist() == [False, False, False, True]
    assert conditions_mask(items, []).all()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Condition("price", "between", [10, 5]), "low 10 is above high 5"),
        (lambda: Condition("price", "between", 10), r"must be \[low, high\]"),
        (lambda: Condition("categories", "in", "Cooking"), "must be a list"),
        (lambda: Condition("price", "roughly", 3), "unknown operator 'roughly'"),
    ],
)
def test_malformed_conditions_are_refused_with_a_reason(make, message):
    with pytest.raises(EngineError, match=message):
        make()


def test_unknown_field_is_named(items):
    with pytest.raises(EngineError, match="unknown field 'colour'"):
        condition_mask(items, Condition("colour", "equals", "red"))
