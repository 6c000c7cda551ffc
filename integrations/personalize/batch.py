"""Batch inference files: the JSON lines Personalize reads, and the ones it writes back.

Input, one JSON object a line, by recipe type: `{"userId": ...}` (user personalization,
popularity), `{"itemId": ...}` (similar items), `{"userId": ..., "itemList": [...]}`
(personalized ranking). Output lines are `{"input": {...}, "output": {"recommendedItems":
[...], "scores": [...]}, "error": null}`; Similar-Items, SIMS and Popularity-Count write no
scores, so their score column is NaN.
"""

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

USER_COLUMNS = ["user_id", "item_id", "score", "rank"]
ITEM_COLUMNS = ["item_id", "similar_item_id", "score", "rank"]


def _jsonl(rows: Iterable[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row, separators=(",", ":")) + "\n" for row in rows).encode()


def user_personalization_input(user_ids: Iterable[str]) -> bytes:
    """Input for USER_PERSONALIZATION recipes and Popularity-Count."""
    return _jsonl({"userId": str(user_id)} for user_id in user_ids)


def similar_items_input(item_ids: Iterable[str]) -> bytes:
    """Input for RELATED_ITEMS recipes (Similar-Items, SIMS)."""
    return _jsonl({"itemId": str(item_id)} for item_id in item_ids)


def personalized_ranking_input(candidates: Mapping[str, Sequence[str]]) -> bytes:
    """Input for PERSONALIZED_RANKING recipes: each user with the items to rank."""
    return _jsonl(
        {"userId": str(user_id), "itemList": [str(item) for item in items]}
        for user_id, items in candidates.items()
    )


@dataclass(frozen=True)
class LineError:
    line: int
    message: str
    input: dict[str, Any] | None = None


@dataclass
class BatchOutput:
    """Recommendations parsed from an output file, and the lines that could not be used."""

    recommendations: pd.DataFrame
    errors: list[LineError] = field(default_factory=list)


def _score(scores: Sequence[Any] | None, position: int) -> float:
    if scores is None or scores[position] is None:
        return math.nan
    return float(scores[position])


def _parse_line(text: str) -> tuple[str, str, list[tuple[str, float]], dict[str, Any]]:
    """(key column, key, [(item, score)], input) of one output line; ValueError if unusable."""
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"malformed JSON ({error.msg})") from None
    if not isinstance(record, dict) or not isinstance(record.get("input"), dict):
        raise ValueError("no input object")
    given = record["input"]
    if record.get("error"):
        raise ValueError(str(record["error"]))
    if "userId" in given:
        key_column, key = "user_id", str(given["userId"])
    elif "itemId" in given:
        key_column, key = "item_id", str(given["itemId"])
    else:
        raise ValueError("input has neither userId nor itemId")
    output = record.get("output") or {}
    items = output.get("recommendedItems")
    scores = output.get("scores")
    if not isinstance(items, list):
        raise ValueError("output has no recommendedItems list")
    if scores is not None and (not isinstance(scores, list) or len(scores) != len(items)):
        raise ValueError("scores do not match recommendedItems")
    try:
        pairs = [(str(item), _score(scores, n)) for n, item in enumerate(items)]
    except (TypeError, ValueError):
        raise ValueError("scores are not numbers") from None
    return key_column, key, pairs, given


def parse_batch_output(text: str | bytes | Iterable[str]) -> BatchOutput:
    """Parse an output file's lines into `user_id, item_id, score, rank` (or, for similar
    items, `item_id, similar_item_id, score, rank`), rank from 1. Bad lines become
    `LineError`s with their 1-based line number; blank lines are skipped."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    lines = text.splitlines() if isinstance(text, str) else text
    rows: list[tuple[str, str, float, int]] = []
    errors: list[LineError] = []
    key_column: str | None = None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            column, key, pairs, given = _parse_line(line)
        except ValueError as error:
            errors.append(LineError(number, str(error), _input_of(line)))
            continue
        if key_column not in (None, column):
            errors.append(LineError(number, f"{column} line in a {key_column} file", given))
            continue
        key_column = column
        rows += [(key, item, score, rank) for rank, (item, score) in enumerate(pairs, start=1)]
    columns = ITEM_COLUMNS if key_column == "item_id" else USER_COLUMNS
    frame = pd.DataFrame(rows, columns=columns)
    return BatchOutput(
        recommendations=frame.astype({"score": "float64", "rank": "int64"}), errors=errors
    )


def _input_of(line: str) -> dict[str, Any] | None:
    try:
        given = json.loads(line).get("input")
    except (json.JSONDecodeError, AttributeError):
        return None
    return given if isinstance(given, dict) else None
