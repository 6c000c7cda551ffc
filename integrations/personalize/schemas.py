"""Avro schemas for the Personalize datasets, built from the columns our export writes.

The export and the schemas both read the column lists below, so they cannot drift apart.
"""

import json
import re
from collections.abc import Iterable
from typing import Any

NAMESPACE = "com.amazonaws.personalize.schema"
FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESERVED_USER_FIELDS = {"USER_ID"}

INTERACTIONS_COLUMNS = ["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE", "EVENT_VALUE"]
# DESCRIPTION is Personalize's one unstructured-text field; TITLE stays a plain string (kept
# for themed batch recommendations, not used in training).
ITEMS_COLUMNS = [
    "ITEM_ID",
    "CATEGORIES",
    "TAGS",
    "CREATION_TIMESTAMP",
    "PRICE",
    "TITLE",
    "DESCRIPTION",
]


def _record(name: str, fields: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "record",
        "name": name,
        "namespace": NAMESPACE,
        "fields": fields,
        "version": "1.0",
    }


def _field(name: str, type_: str, *, nullable: bool = False, **flags: bool) -> dict[str, Any]:
    field: dict[str, Any] = {"name": name, "type": ["null", type_] if nullable else type_}
    field.update(flags)
    return field


def interactions_schema() -> dict[str, Any]:
    """USER_ID, ITEM_ID, TIMESTAMP (epoch seconds), EVENT_TYPE, EVENT_VALUE (nullable)."""
    return _record(
        "Interactions",
        [
            _field("USER_ID", "string"),
            _field("ITEM_ID", "string"),
            _field("TIMESTAMP", "long"),
            _field("EVENT_TYPE", "string"),
            _field("EVENT_VALUE", "float", nullable=True),
        ],
    )


def items_schema() -> dict[str, Any]:
    """The catalogue: categories and tags are categorical ("a|b"), description is textual."""
    return _record(
        "Items",
        [
            _field("ITEM_ID", "string"),
            _field("CATEGORIES", "string", nullable=True, categorical=True),
            _field("TAGS", "string", nullable=True, categorical=True),
            _field("CREATION_TIMESTAMP", "long"),
            _field("PRICE", "float", nullable=True),
            _field("TITLE", "string", nullable=True),
            _field("DESCRIPTION", "string", nullable=True, textual=True),
        ],
    )


def users_columns(attributes: Iterable[str]) -> list[str]:
    """USER_ID followed by the given attribute columns, checked to be valid Avro names."""
    names = list(attributes)
    for name in names:
        if not FIELD_NAME.match(name) or name.upper() in RESERVED_USER_FIELDS:
            raise ValueError(f"{name!r}: not usable as a Personalize users column")
    if len({name.upper() for name in names}) != len(names):
        raise ValueError(f"duplicate users columns in {names}")
    return ["USER_ID", *names]


def users_schema(attributes: Iterable[str]) -> dict[str, Any]:
    """USER_ID plus one nullable categorical string per attribute."""
    columns = users_columns(attributes)
    fields = [_field("USER_ID", "string")]
    fields += [_field(name, "string", nullable=True, categorical=True) for name in columns[1:]]
    return _record("Users", fields)


def schema_json(schema: dict[str, Any]) -> str:
    """The schema as Personalize's CreateSchema takes it: compact JSON text."""
    return json.dumps(schema, separators=(",", ":"))


def column_names(schema: dict[str, Any]) -> list[str]:
    """The CSV header a dataset with this schema expects, in schema order."""
    return [field["name"] for field in schema["fields"]]
