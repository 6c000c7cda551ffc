"""The catalogue's numeric structure: topics, content types, publish dates, popularity, prices."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .vocabulary import CONTENT_TYPES, COURSE, PODCAST, TOPIC_SHARE, TOPICS

DAY = 86_400
CATALOGUE_DAYS = 730  # items are published over the last two years, more of them recently
CATALOGUE_TYPE_SHARE = np.array([0.42, 0.26, 0.17, 0.15])
COURSE_PRICES = np.array([19.0, 29.0, 39.0, 49.0, 79.0, 99.0, 149.0])
UNAVAILABLE_SHARE = 0.03
ZIPF_EXPONENT = 0.8  # item popularity ~ rank ** -exponent


@dataclass
class Catalogue:
    topic: np.ndarray  # int16 topic index
    ctype: np.ndarray  # int8 content type index
    published_at: np.ndarray  # int64 unix seconds; item order = publish order
    popularity: np.ndarray  # float64 Zipf weight
    price: np.ndarray  # float64, 0 for free content
    available: np.ndarray  # bool
    episode: np.ndarray  # int32 podcast episode number (0 for other types)


def catalogue_draw(rng: np.random.Generator, n_items: int, now: int) -> Catalogue:
    """Topics, content types, publish dates (more recent ones), popularity, prices."""
    n_cells = len(TOPICS) * len(CONTENT_TYPES)
    if n_items < n_cells:
        raise ValueError(f"n_items must be at least {n_cells} (one per topic and content type)")
    cell_p = np.outer(TOPIC_SHARE, CATALOGUE_TYPE_SHARE).ravel()
    extra = rng.choice(n_cells, size=n_items - n_cells, p=cell_p)
    cells = rng.permutation(np.concatenate([np.arange(n_cells), extra]))
    age_s = (DAY + (CATALOGUE_DAYS - 1) * DAY * rng.random(n_items) ** 1.5).astype(np.int64)
    order = np.argsort(-age_s, kind="stable")  # ids follow publish order
    cells, published = cells[order], now - age_s[order]
    topic = (cells // len(CONTENT_TYPES)).astype(np.int16)
    ctype = (cells % len(CONTENT_TYPES)).astype(np.int8)
    popularity = (rng.permutation(n_items) + 1.0) ** -ZIPF_EXPONENT
    price = np.where(ctype == COURSE, rng.choice(COURSE_PRICES, size=n_items), 0.0)
    price = np.where(price > 0, price - (rng.random(n_items) < 0.3) * 0.01, price)  # some .99
    available = rng.random(n_items) >= UNAVAILABLE_SHARE
    return Catalogue(
        topic, ctype, published, popularity, price, available, _episode_numbers(rng, topic, ctype)
    )


def _episode_numbers(rng: np.random.Generator, topic: np.ndarray, ctype: np.ndarray) -> np.ndarray:
    """Each topic's podcast numbers its episodes in publish order, after some older ones."""
    episode = np.zeros(len(topic), dtype=np.int32)
    is_podcast = ctype == PODCAST
    show = topic[is_podcast]
    order = np.argsort(show, kind="stable")  # items are in publish order already
    counts = np.bincount(show, minlength=len(TOPICS))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(show), dtype=np.int32)
    rank[order] = np.arange(len(show)) - np.repeat(starts, counts)
    first = rng.integers(5, 80, size=len(TOPICS))
    episode[is_podcast] = first[show] + rank
    return episode
