"""Behaviour: engagements drawn from the users' tastes, run through the funnel."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .audience import BASE_TYPE_MIX, Audience
from .catalogue import DAY, Catalogue
from .vocabulary import CONTENT_TYPES, TOPIC_SHARE, TOPICS

HOUR = 3_600
WINDOW_DAYS = 180  # interactions happen over the last six months
EVENT_TYPES = ("view", "click", "like", "watch", "purchase", "complete")  # funnel order
VIEW, CLICK, LIKE, WATCH, PURCHASE, COMPLETE = range(len(EVENT_TYPES))
RECENCY_BOOST, RECENCY_DAYS = 2.0, 45.0  # new items get up to 1 + boost times the daily traffic

EXPLORE_SHARE = 0.12  # engagements drawn from any topic rather than the user's favourites
EXPLORE_FACTOR = 0.5  # off-taste items are clicked, liked and bought less
CLICK_P = np.array([0.45, 0.50, 0.40, 0.35])  # per content type, given a view
LIKE_P = np.array([0.15, 0.12, 0.10, 0.08])  # given a click
WATCH_P = np.array([0.0, 0.70, 0.65, 0.0])  # videos and podcasts, given a click
READ_TO_END_P = np.array([0.35, 0.0, 0.0, 0.0])  # articles: "complete" given a click
PURCHASE_P = np.array([0.0, 0.0, 0.0, 0.22])  # courses, given a click
COURSE_COMPLETE_P = 0.40  # given a purchase
FINISH_P = (0.45, 0.12)  # a watch runs to the end (-> complete): in taste, off taste
OVERSUPPLY = 1.15  # engagements drawn in excess, then thinned to the exact event budget


@dataclass
class Events:
    user: np.ndarray  # int32
    item: np.ndarray  # int32
    timestamp: np.ndarray  # int64 unix seconds
    event_type: np.ndarray  # int8 index into EVENT_TYPES
    value: np.ndarray  # float32, NaN where the type carries no value


def _expected_events() -> np.ndarray:
    """Expected events per engaged item: rows in taste / off taste, columns content types."""
    rows = []
    for factor, finish in ((1.0, FINISH_P[0]), (EXPLORE_FACTOR, FINISH_P[1])):
        deeper = (
            LIKE_P * factor
            + WATCH_P * (1 + finish)
            + READ_TO_END_P
            + PURCHASE_P * factor * (1 + COURSE_COMPLETE_P)
        )
        rows.append(1 + CLICK_P * factor * (1 + deeper))
    return np.array(rows)


def engagements_per_user(events_per_user: float) -> float:
    """Engagements to draw per user for an event budget, with room to thin down to it."""
    table = _expected_events()
    per_type = (1 - EXPLORE_SHARE) * table[0] + EXPLORE_SHARE * table[1]
    return OVERSUPPLY * events_per_user / float(per_type @ BASE_TYPE_MIX)


def _pick_column(rng: np.random.Generator, probs: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each entry of `rows`, a column index drawn from that row of `probs`."""
    cumulative = np.cumsum(probs, axis=1)
    cumulative /= cumulative[:, -1:]  # exactly 1 from the last used column on, so u < 1 stops
    u = rng.random(len(rows), dtype=np.float32)
    picked = np.zeros(len(rows), dtype=np.int8)
    for col in range(probs.shape[1] - 1):  # a loop over columns, not rows
        picked += u > cumulative[rows, col]
    return picked


def _item_sampler(catalogue: Catalogue, now: int) -> tuple[np.ndarray, np.ndarray]:
    """Items sorted by (topic, type) cell and a key whose cell c part runs over (c, c + 1].

    Searching `cell + u` (u uniform in [0, 1)) in the key draws an item of that cell with
    probability proportional to popularity x time on sale in the window x a recency boost.
    """
    age_days = (now - catalogue.published_at) / DAY
    exposure = np.minimum(age_days / WINDOW_DAYS, 1.0)
    boost = 1 + RECENCY_BOOST * np.exp(-age_days / RECENCY_DAYS)
    weight = catalogue.popularity * exposure * boost
    cell = catalogue.topic.astype(np.int64) * len(CONTENT_TYPES) + catalogue.ctype
    order = np.argsort(cell, kind="stable")
    cell, weight = cell[order], weight[order]
    totals = np.bincount(cell, weights=weight, minlength=len(TOPICS) * len(CONTENT_TYPES))
    before = np.concatenate([[0.0], np.cumsum(totals)[:-1]])
    within = (np.cumsum(weight) - before[cell]) / totals[cell]
    last = np.r_[cell[1:] != cell[:-1], True]
    within[last] = 1.0
    return order.astype(np.int32), cell + within


def events_draw(
    rng: np.random.Generator,
    audience: Audience,
    catalogue: Catalogue,
    now: int,
    n_events: float,
) -> Events:
    """Engagements (user, topic, type, item, time) run through the funnel.

    The engagements are thinned at random so that the expected number of events is `n_events`
    (thinning a Poisson count leaves it Poisson, so the users' activity keeps its shape).
    """
    n_users = len(audience.age)
    user = np.repeat(np.arange(n_users, dtype=np.int32), rng.poisson(audience.engagements))
    favourite = audience.favourites[user, _pick_column(rng, audience.weights, user)]
    explore = rng.random(len(user)) < EXPLORE_SHARE
    wander = rng.choice(len(TOPICS), size=len(user), p=TOPIC_SHARE).astype(np.int16)
    topic = np.where(explore, wander, favourite)
    ctype = _pick_column(rng, audience.type_mix, user)
    in_taste = (audience.favourites[user] == topic[:, None]).any(axis=1)
    expected = _expected_events()[(~in_taste).astype(np.int8), ctype].sum()
    keep = rng.random(len(user)) < n_events / max(expected, 1.0)
    user, topic, ctype, in_taste = user[keep], topic[keep], ctype[keep], in_taste[keep]
    order, key = _item_sampler(catalogue, now)
    cell = topic.astype(np.int64) * len(CONTENT_TYPES) + ctype
    item = order[np.searchsorted(key, cell + rng.random(len(user)), side="right")]
    start = np.maximum(now - WINDOW_DAYS * DAY, catalogue.published_at[item] + HOUR)
    end = now - 3 * HOUR  # room for the rest of the funnel
    seen = start + ((end - start) * rng.random(len(user)) ** 0.8).astype(np.int64)
    return _funnel(rng, user, item, seen, in_taste, catalogue, now)


def _funnel(
    rng: np.random.Generator,
    user: np.ndarray,
    item: np.ndarray,
    seen: np.ndarray,
    in_taste: np.ndarray,
    catalogue: Catalogue,
    now: int,
) -> Events:
    """view -> click -> like / watch (-> complete) / read to end / purchase (-> complete)."""
    ctype = catalogue.ctype[item]
    factor = np.where(in_taste, 1.0, EXPLORE_FACTOR)
    parts: list[tuple[np.ndarray, np.ndarray, int, np.ndarray | None]] = [
        (np.arange(len(user)), seen, VIEW, None)
    ]

    def follow(mask: np.ndarray, after: np.ndarray, low: int, high: int) -> np.ndarray:
        return after[mask] + rng.integers(low, high, size=int(mask.sum()))

    clicked = rng.random(len(user)) < CLICK_P[ctype] * factor
    click_at = seen.copy()
    click_at[clicked] = follow(clicked, seen, 5, 120)
    parts.append((np.flatnonzero(clicked), click_at[clicked], CLICK, None))
    liked = clicked & (rng.random(len(user)) < LIKE_P[ctype] * factor)
    parts.append((np.flatnonzero(liked), follow(liked, click_at, 60, 1800), LIKE, None))

    watched = clicked & (rng.random(len(user)) < WATCH_P[ctype])
    finished = watched & (rng.random(len(user)) < np.where(in_taste, *FINISH_P))
    fraction = np.where(finished, 1.0, 0.95 * rng.beta(2.0, 3.0, size=len(user)))
    watch_at = click_at.copy()
    watch_at[watched] = follow(watched, click_at, 10, 60)
    parts.append(
        (np.flatnonzero(watched), watch_at[watched], WATCH, np.round(fraction[watched], 3))
    )
    parts.append((np.flatnonzero(finished), follow(finished, watch_at, 300, 3600), COMPLETE, None))

    read = clicked & (rng.random(len(user)) < READ_TO_END_P[ctype])
    parts.append((np.flatnonzero(read), follow(read, click_at, 60, 900), COMPLETE, None))

    bought = clicked & (rng.random(len(user)) < PURCHASE_P[ctype] * factor)
    buy_at = click_at.copy()
    buy_at[bought] = follow(bought, click_at, 60, 1800)
    parts.append((np.flatnonzero(bought), buy_at[bought], PURCHASE, catalogue.price[item[bought]]))
    done = bought & (rng.random(len(user)) < COURSE_COMPLETE_P)
    done_at = np.minimum(follow(done, buy_at, DAY, 45 * DAY), now - 60)
    parts.append((np.flatnonzero(done), done_at, COMPLETE, None))
    return _assemble(parts, user, item)


def _assemble(
    parts: list[tuple[np.ndarray, np.ndarray, int, np.ndarray | None]],
    user: np.ndarray,
    item: np.ndarray,
) -> Events:
    """Concatenate the funnel's parts and sort them by user, time and funnel step."""
    rows = np.concatenate([p[0] for p in parts])
    stamps = np.concatenate([p[1] for p in parts]).astype(np.int64)
    kinds = np.concatenate([np.full(len(p[0]), p[2], dtype=np.int8) for p in parts])
    values = np.concatenate(
        [
            np.full(len(p[0]), np.nan, dtype=np.float32)
            if p[3] is None
            else p[3].astype(np.float32)
            for p in parts
        ]
    )
    users = user[rows]
    base = stamps.min() if len(stamps) else 0
    sort_key = ((users.astype(np.int64) << 27 | (stamps - base)) << 3) | kinds
    order = np.argsort(sort_key)
    return Events(users[order], item[rows[order]], stamps[order], kinds[order], values[order])
