"""Titles, descriptions and tags written from a topic's vocabulary."""

from __future__ import annotations

import random
import re
from typing import NamedTuple

from .catalogue import Catalogue
from .vocabulary import (
    A_LEVEL,
    CONTENT_TYPES,
    DESCRIPTION_TEMPLATES,
    FIRST_NAMES,
    LAST_NAMES,
    LEVEL_SHARE,
    LEVELS,
    SMALL_WORDS,
    TITLE_TEMPLATES,
    TOPICS,
)


def _title_case(phrase: str) -> str:
    """Capitalise words except small ones; words that already have capitals (SQL) stay as is."""
    words = phrase.split(" ")
    return " ".join(
        w if w in SMALL_WORDS or w != w.lower() else w[:1].upper() + w[1:] for w in words
    )


def _cap_starts(title: str) -> str:
    """Capitalise the first letter of the title and after a colon."""
    return re.sub(r"(^|: )([a-z])", lambda m: m.group(1) + m.group(2).upper(), title)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _tag_list(tags: list[str]) -> str:
    return ", ".join(tags[:-1]) + " and " + tags[-1] if len(tags) > 1 else tags[0]


class ItemText(NamedTuple):
    title: str
    description: str
    tags: list[str]


def item_text(
    rnd: random.Random, catalogue: Catalogue, index: int, describe: bool = True
) -> ItemText:
    """Title, description (unless `describe` is false) and tags from the topic's vocabulary."""
    topic = TOPICS[catalogue.topic[index]]
    ctype = CONTENT_TYPES[catalogue.ctype[index]]
    subject = rnd.choice(topic.subjects)
    level = rnd.choices(LEVELS, weights=LEVEL_SHARE)[0]
    tags = rnd.sample(topic.tags, k=rnd.randint(3, 5))
    words = {
        "subject": _title_case(subject),
        "bare": _title_case(subject.removeprefix("the ")),
        "task": _title_case(rnd.choice(topic.tasks)),
        "n": rnd.choice((3, 5, 7, 9, 10, 12)),
        "minutes": rnd.choice((5, 8, 10, 12, 15, 20)),
        "weeks": rnd.choice((2, 4, 6, 8)),
        "episode": int(catalogue.episode[index]),
        "show": topic.show,
        "guest": f"{rnd.choice(FIRST_NAMES)} {rnd.choice(LAST_NAMES)}",
    }
    title = _cap_starts(rnd.choice(TITLE_TEMPLATES[ctype]).format(**words))
    description = ""
    if describe:
        words.update(
            subject=subject,
            audience=rnd.choice(topic.audiences),
            a_level=A_LEVEL[level],
            tag_list=_tag_list(tags[:3]),
            host=rnd.choice(FIRST_NAMES),
        )
        description = rnd.choice(DESCRIPTION_TEMPLATES[ctype]).format(**words)
    return ItemText(title, description, [*tags, level])
