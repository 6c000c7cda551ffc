"""Reads that several bulletin modules share: the report's counts of people and events from
the delivery, open, click and conversion rows.

The experiment report (`bulletins.services.reports`) counts with these, and so does erasure
(`bulletins.services.erasure`), which runs the same arithmetic over one user's deliveries to
keep what they added to the report: both import them from here, neither from the other. See
`bulletins.services.reports` for what is counted and why the unit is the person.
"""

import datetime as dt
from dataclasses import dataclass, replace

from django.db.models import Count, QuerySet, Sum
from django.db.models.functions import TruncDate

from bulletins.models import Click, Conversion, Delivery, Open


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class Counts:
    """People and events of one arm, position or run. `delivered` is the people reached: sent
    an email, or shown the widget (`impressions` counts the items a widget showed)."""

    delivered: int = 0
    openers: int = 0
    clickers: int = 0
    clicks: int = 0
    converters: int = 0
    conversions: int = 0
    value: float = 0.0
    impressions: int = 0

    @property
    def open_rate(self) -> float | None:
        return _rate(self.openers, self.delivered)

    @property
    def ctr(self) -> float | None:
        return _rate(self.clickers, self.delivered)

    @property
    def click_to_open(self) -> float | None:
        return _rate(self.clickers, self.openers)

    @property
    def conversion_rate(self) -> float | None:
        return _rate(self.converters, self.delivered)


def _by(queryset: QuerySet, key: str, **aggregates) -> dict:
    return {row[key]: row for row in queryset.values(key).annotate(**aggregates)}


def delivery_counts_by(deliveries: QuerySet[Delivery], key: str) -> dict:
    """Counts of people per value of `key` ("variant_id", "run_id"), a delivery field."""
    delivered = _by(deliveries, key, n=Count("user", distinct=True))
    # A click is an open too: its reader saw the email even if their client blocked the pixel.
    openers: dict = {}
    for model in (Open, Click):
        pairs = (
            model.objects.filter(delivery__in=deliveries, is_human=True)
            .values_list(f"delivery__{key}", "delivery__user")
            .distinct()
        )
        for value, user in pairs:
            openers.setdefault(value, set()).add(user)
    clicks = _by(
        Click.objects.filter(delivery__in=deliveries, is_human=True),
        f"delivery__{key}",
        people=Count("delivery__user", distinct=True),
        n=Count("pk"),
    )
    conversions = _by(
        Conversion.objects.filter(click__delivery__in=deliveries),
        f"click__delivery__{key}",
        people=Count("click__delivery__user", distinct=True),
        n=Count("pk"),
        value=Sum("value"),
    )
    counts = {}
    for value, row in delivered.items():
        click = clicks.get(value, {})
        conversion = conversions.get(value, {})
        counts[value] = Counts(
            delivered=row["n"],
            openers=len(openers.get(value, ())),
            clickers=click.get("people", 0),
            clicks=click.get("n", 0),
            converters=conversion.get("people", 0),
            conversions=conversion.get("n", 0),
            value=float(conversion.get("value") or 0.0),
        )
    return counts


def counts_plus_erased(counts: dict, erased: dict) -> dict:
    """Counts from the live rows plus what erased users had added (`bulletins.services.erasure`):
    the totals stay what they were when a user is forgotten."""
    merged = dict(counts)
    for key, extra in erased.items():
        base = merged.get(key, Counts())
        merged[key] = replace(base, **{name: getattr(base, name) + n for name, n in extra.items()})
    return merged


def delivery_counts_by_position(
    deliveries: QuerySet[Delivery], erased: tuple[int, dict] = (0, {})
) -> list[tuple[int, Counts]]:
    """(position, counts of the emails with a human click or a conversion at it), by position;
    `erased` is the erased users' (sent emails, position -> counts)."""
    erased_emails, erased_positions = erased
    delivered = deliveries.count() + erased_emails
    clicks = _by(
        Click.objects.filter(delivery__in=deliveries, is_human=True),
        "position",
        people=Count("delivery", distinct=True),
        n=Count("pk"),
    )
    conversions = _by(
        Conversion.objects.filter(click__delivery__in=deliveries),
        "position",
        people=Count("click__delivery", distinct=True),
        n=Count("pk"),
        value=Sum("value"),
    )
    positions = sorted(set(clicks) | set(conversions))
    live = {
        position: Counts(
            delivered=delivered,
            clickers=clicks.get(position, {}).get("people", 0),
            clicks=clicks.get(position, {}).get("n", 0),
            converters=conversions.get(position, {}).get("people", 0),
            conversions=conversions.get(position, {}).get("n", 0),
            value=float(conversions.get(position, {}).get("value") or 0.0),
        )
        for position in positions
    }
    erased_rows = {position: Counts(delivered=delivered) for position in erased_positions}
    merged = counts_plus_erased(erased_rows | live, erased_positions)
    return sorted(merged.items())


def delivery_counts_by_day(
    deliveries: QuerySet[Delivery], erased: dict | None = None
) -> list[tuple[dt.date, int, int]]:
    """(day, human clicks, conversions) of the deliveries, by day; `erased` is the erased
    users' day -> (clicks, conversions)."""
    days = {
        day: (clicks, conversions)
        for day, clicks, conversions in daily_counts(
            (Click.objects.filter(delivery__in=deliveries, is_human=True), "created_at"),
            (Conversion.objects.filter(click__delivery__in=deliveries), "converted_at"),
        )
    }
    for day, (clicks, conversions) in (erased or {}).items():
        live_clicks, live_conversions = days.get(day, (0, 0))
        days[day] = (live_clicks + clicks, live_conversions + conversions)
    return [(day, *days[day]) for day in sorted(days)]


def daily_counts(*series: tuple[QuerySet, str]) -> list[tuple]:
    """(day, rows of each queryset on that day by its date-time field) for the days with any."""
    per_series = [
        _by(queryset.annotate(day=TruncDate(when)), "day", n=Count("pk"))
        for queryset, when in series
    ]
    days = sorted(set().union(*per_series))
    return [(day, *(rows.get(day, {}).get("n", 0) for rows in per_series)) for day in days]
