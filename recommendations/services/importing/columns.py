"""The columns each kind of file must have, and those of users and items that fill fields."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import models

from recommendations.models import EndUser, Item

from . import cells
from .reports import ImportFailed

REQUIRED_COLUMNS = {
    "users": ("USER_ID",),
    "items": ("ITEM_ID",),
    "interactions": ("USER_ID", "ITEM_ID", "TIMESTAMP"),
}


@dataclass(frozen=True)
class EntityKind:
    model: type[models.Model]
    id_column: str
    fields: dict[str, tuple[str, Callable[[str], Any]]]  # column: (field name, parser)
    fixed: dict[str, Any]  # field values every imported row gets


ENTITY_KINDS = {
    "users": EntityKind(
        model=EndUser,
        id_column="USER_ID",
        fields={
            "EMAIL": ("email", cells.email),
            "EMAIL_OPT_IN": ("email_opt_in", cells.boolean(False)),
            "PERSONALIZATION_OPT_OUT": ("personalization_opt_out", cells.boolean(False)),
        },
        fixed={"is_anonymous": False},
    ),
    "items": EntityKind(
        model=Item,
        id_column="ITEM_ID",
        fields={
            "TITLE": ("title", cells.text(500)),
            "DESCRIPTION": ("description", cells.text(None)),
            "URL": ("url", cells.url),
            "IMAGE_URL": ("image_url", cells.url),
            "CATEGORIES": ("categories", cells.pipe_list),
            "GENRES": ("categories", cells.pipe_list),
            "TAGS": ("tags", cells.pipe_list),
            "PRICE": ("price", cells.price),
            "AVAILABLE": ("available", cells.boolean(True)),
            "PUBLISHED_AT": ("published_at", cells.moment),
            "CREATION_TIMESTAMP": ("published_at", cells.moment),
        },
        fixed={},
    ),
}


def columns_check(kind: str, source: str, header: list[str]) -> None:
    columns = [name.strip().upper() for name in header]
    required = REQUIRED_COLUMNS[kind]
    problems = []
    if "" in columns:
        problems.append(f"column {columns.index('') + 1} has no name")
    duplicated = sorted({name for name in columns if name and columns.count(name) > 1})
    if duplicated:
        problems.append(f"duplicated {', '.join(duplicated)}")
    missing = [name for name in required if name not in columns]
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    problems += _alias_conflicts(kind, columns)
    if problems:
        raise ImportFailed(
            f"{source} line 1: wrong columns: {'; '.join(problems)} "
            f"(found {', '.join(header)}; required {', '.join(required)})"
        )


def _alias_conflicts(kind: str, columns: list[str]) -> list[str]:
    """Two columns that would fill the same field, e.g. CATEGORIES and GENRES."""
    if kind not in ENTITY_KINDS:
        return []
    by_field: dict[str, list[str]] = {}
    for column in columns:
        if column in ENTITY_KINDS[kind].fields:
            by_field.setdefault(ENTITY_KINDS[kind].fields[column][0], []).append(column)
    return [
        f"{' and '.join(names)} both fill {name} (give one)"
        for name, names in by_field.items()
        if len(names) > 1
    ]
