"""Simulated readers for a sent run, through the real tracking path: opens through the open
pixel's service, clicks through the click redirect's, conversions through the events API's.
The demo uses it to fill the reports; the tests use it to check, with a known true uplift
between arms, that the report's intervals contain the truth as often as they claim.

The run's emails are taken to have gone out `read_after_hours` ago (their `sent_at` is moved
back), so the simulated readers are not mistaken for link scanners clicking seconds after
sending.
"""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from django.db import transaction
from django.utils import timezone

from bulletins.models import BulletinRun, Delivery
from bulletins.services.attribution import conversions_attribute
from bulletins.services.tracking import click_record, open_record
from recommendations.services.events import events_ingest
from recsite import tokens

READER_AGENT = "Mozilla/5.0 (simulated reader) Gecko/20100101 Firefox/128.0"


@dataclass(frozen=True)
class Readers:
    """How simulated people behave: the chance to open, to click once opened (by arm name,
    with `click_given_open` for arms not listed) and to buy after a click."""

    open_rate: float = 0.35
    click_given_open: float = 0.15
    click_given_open_by_arm: dict[str, float] = field(default_factory=dict)
    conversion_given_click: float = 0.2
    read_after_hours: float = 24.0

    def click_rate(self, arm: str) -> float:
        return self.click_given_open_by_arm.get(arm, self.click_given_open)

    def true_ctr(self, arm: str) -> float:
        return self.open_rate * self.click_rate(arm)


@dataclass
class Simulated:
    opens: int = 0
    clicks: int = 0
    conversions: int = 0


def readers_simulate(
    *,
    run: BulletinRun,
    readers: Readers,
    seed: int,
    appeal: Callable[[str, str], float] | None = None,
) -> Simulated:
    """Open, click and buy for the run's sent emails, each person drawing their own luck.

    With `appeal(user id, item id)`, the chance that an opened email's reader clicks that
    item, readers click what they like (the demo's planted tastes), so an arm does better
    only if its items suit its readers; without it, by the arm's click rate."""
    rng = np.random.default_rng(seed)
    sent = Delivery.objects.filter(run=run, status=Delivery.Status.SENT)
    sent.update(sent_at=timezone.now() - dt.timedelta(hours=readers.read_after_hours))
    result, conversions = Simulated(), []
    for delivery in sent.select_related("variant", "user").order_by("pk"):
        if rng.random() >= readers.open_rate:
            continue
        open_record(token=tokens.open_token(delivery.pk), user_agent=READER_AGENT)
        result.opens += 1
        entry = _clicked(rng, delivery, readers, appeal)
        if entry is None:
            continue
        token = tokens.click_token(delivery.pk, entry["position"], entry["item_id"])
        click_record(token=token, user_agent=READER_AGENT)
        result.clicks += 1
        if rng.random() < readers.conversion_given_click:
            conversions.append(
                {
                    "user_id": delivery.user.external_id,
                    "item_id": entry["item_id"],
                    "event_type": "purchase",
                    "event_id": f"simulated-{run.pk}-{delivery.pk}",
                }
            )
    for start in range(0, len(conversions), 500):
        batch = conversions[start : start + 500]
        with transaction.atomic():
            events_ingest(events=batch)
        # Attributed now, not when the task the events API enqueues gets to them (it then
        # finds them done): the caller reads the report next.
        conversions_attribute(event_ids=[event["event_id"] for event in batch])
    result.conversions = len(conversions)
    return result


def _clicked(rng, delivery: Delivery, readers: Readers, appeal) -> dict | None:
    """The item an opened email's reader clicks, or None. Readers favour the top of the
    email: position weights 1/position."""
    items = delivery.items
    if not items:
        return None
    weights = 1 / np.arange(1, len(items) + 1)
    if appeal is None:
        arm = delivery.variant.name if delivery.variant else ""
        if rng.random() >= readers.click_rate(arm):
            return None
        return items[rng.choice(len(items), p=weights / weights.sum())]
    chances = np.array([appeal(delivery.user.external_id, e["item_id"]) for e in items])
    chances = np.clip(chances * weights / weights.mean(), 0.0, 1.0)
    if rng.random() >= 1 - np.prod(1 - chances):
        return None
    return items[rng.choice(len(items), p=chances / chances.sum())]
