"""What the bulletins did: per experiment arm (with uplift over the control), per position,
per run and per day, counted from the delivery, open, click and conversion rows.

Only human opens and clicks count (machine ones are kept but flagged, see
`bulletins.machines`). The unit is the person, not the email: `delivered` counts the people
sent at least one email, `clickers` the people who clicked at least once (three clicks are one
clicker), `converters` the people with at least one attributed conversion. For one run that is
the same as counting emails; over several runs it keeps the experiment's intervals honest,
because a user stays in the same arm from run to run and their emails are not independent
trials (counting emails would make the intervals too narrow: see `bulletins.stats`). CTR is
clickers over delivered, click-to-open clickers over openers (a clicker counts as an opener
even when the open pixel did not load), and the conversion rate converters over delivered.
Per position the unit is the email, and `clicks` counts every human click, repeats included.
"""

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Count, QuerySet, Sum
from django.db.models.functions import TruncDate

from bulletins.models import Bulletin, BulletinRun, Click, Conversion, Delivery, Open, Variant
from bulletins.stats import Uplift, uplift

NO_VARIANT = "(all)"


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class Counts:
    delivered: int = 0
    openers: int = 0
    clickers: int = 0
    clicks: int = 0
    converters: int = 0
    conversions: int = 0
    value: float = 0.0

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


@dataclass(frozen=True)
class ArmRow:
    name: str
    source: str
    is_control: bool
    share: int | None
    counts: Counts
    ctr_uplift: Uplift | None = None
    conversion_uplift: Uplift | None = None
    warning: str | None = None


@dataclass(frozen=True)
class ExperimentReport:
    bulletin: Bulletin
    run: BulletinRun | None
    arms: list[ArmRow]
    control: str | None
    min_detectable_uplift: float
    by_position: list[tuple[int, Counts]] = field(default_factory=list)
    by_run: list[tuple[BulletinRun, Counts]] = field(default_factory=list)
    by_day: list[tuple[dt.date, int, int]] = field(default_factory=list)  # day, clicks, convs


def _by(queryset: QuerySet, key: str, **aggregates) -> dict:
    return {row[key]: row for row in queryset.values(key).annotate(**aggregates)}


def _counts_by(deliveries: QuerySet[Delivery], key: str) -> dict:
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


def _control(variants: list[Variant]) -> Variant | None:
    return next((v for v in variants if v.is_control), variants[0] if variants else None)


def _uplift(control: Counts, arm: Counts, successes: str) -> Uplift:
    return uplift(
        control_successes=getattr(control, successes),
        control_trials=control.delivered,
        variant_successes=getattr(arm, successes),
        variant_trials=arm.delivered,
    )


def experiment_report(*, bulletin: Bulletin, run: BulletinRun | None = None) -> ExperimentReport:
    """The bulletin's arms over all its runs (or one run), each against the control."""
    deliveries = Delivery.objects.filter(run__bulletin=bulletin, status=Delivery.Status.SENT)
    if run is not None:
        deliveries = deliveries.filter(run=run)
    variants = list(bulletin.variants.all())
    control = _control(variants)
    by_variant = _counts_by(deliveries, "variant_id")
    wanted = bulletin.min_detectable_uplift / 100
    arms = []
    control_counts = by_variant.get(control.pk if control else None, Counts())
    for variant in variants or [None]:
        counts = by_variant.get(variant.pk if variant else None, Counts())
        row = ArmRow(
            name=variant.name if variant else NO_VARIANT,
            source=variant.get_source_display() if variant else "as each placement is set",
            is_control=variant is not None and variant == control,
            share=variant.share if variant else None,
            counts=counts,
        )
        if variant is not None and control is not None and variant != control:
            ctr_uplift = _uplift(control_counts, counts, "clickers")
            row = ArmRow(
                **{
                    **row.__dict__,
                    "ctr_uplift": ctr_uplift,
                    "conversion_uplift": _uplift(control_counts, counts, "converters"),
                    "warning": ctr_uplift.underpowered(relative_uplift_wanted=wanted),
                }
            )
        arms.append(row)
    return ExperimentReport(
        bulletin=bulletin,
        run=run,
        arms=arms,
        control=control.name if control else None,
        min_detectable_uplift=wanted,
        by_position=_by_position(deliveries),
        by_run=_by_run(bulletin, deliveries),
        by_day=_by_day(deliveries),
    )


def _by_position(deliveries: QuerySet[Delivery]) -> list[tuple[int, Counts]]:
    delivered = deliveries.count()
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
    return [
        (
            position,
            Counts(
                delivered=delivered,
                clickers=clicks.get(position, {}).get("people", 0),
                clicks=clicks.get(position, {}).get("n", 0),
                converters=conversions.get(position, {}).get("people", 0),
                conversions=conversions.get(position, {}).get("n", 0),
                value=float(conversions.get(position, {}).get("value") or 0.0),
            ),
        )
        for position in positions
    ]


def _by_run(bulletin: Bulletin, deliveries: QuerySet[Delivery]) -> list[tuple[BulletinRun, Counts]]:
    counts = _counts_by(deliveries, "run_id")
    runs = BulletinRun.objects.filter(pk__in=list(counts)).order_by("-started_at")
    return [(run, counts[run.pk]) for run in runs]


def _by_day(deliveries: QuerySet[Delivery]) -> list[tuple[dt.date, int, int]]:
    clicks = _by(
        Click.objects.filter(delivery__in=deliveries, is_human=True).annotate(
            day=TruncDate("created_at")
        ),
        "day",
        n=Count("pk"),
    )
    conversions = _by(
        Conversion.objects.filter(click__delivery__in=deliveries).annotate(
            day=TruncDate("converted_at")
        ),
        "day",
        n=Count("pk"),
    )
    days = sorted(set(clicks) | set(conversions))
    return [
        (day, clicks.get(day, {}).get("n", 0), conversions.get(day, {}).get("n", 0)) for day in days
    ]


def report_rows(report: ExperimentReport) -> list[list]:
    """The report as CSV rows: one per arm, then one per position and per run."""
    header = [
        "section", "name", "delivered", "openers", "clickers", "clicks", "converters",
        "conversions", "value", "open_rate", "ctr", "click_to_open", "conversion_rate",
        "ctr_uplift", "ctr_uplift_low", "ctr_uplift_high", "ctr_p_value",
        "conversion_uplift", "conversion_uplift_low", "conversion_uplift_high",
        "conversion_p_value",
    ]  # fmt: skip
    rows = [header]

    def line(section: str, name: str, counts: Counts, arm: ArmRow | None = None) -> list:
        ctr, conv = (arm.ctr_uplift, arm.conversion_uplift) if arm else (None, None)
        return [
            section, name, counts.delivered, counts.openers, counts.clickers, counts.clicks,
            counts.converters, counts.conversions, round(counts.value, 2), counts.open_rate,
            counts.ctr, counts.click_to_open, counts.conversion_rate,
            *(_uplift_cells(ctr)), *(_uplift_cells(conv)),
        ]  # fmt: skip

    rows += [line("arm", arm.name, arm.counts, arm) for arm in report.arms]
    rows += [line("position", str(position), counts) for position, counts in report.by_position]
    rows += [line("run", f"#{run.pk} {run.started_at:%Y-%m-%d}", c) for run, c in report.by_run]
    return rows


def _uplift_cells(result: Uplift | None) -> list:
    if result is None:
        return [None] * 4
    return [result.relative_uplift, result.relative_low, result.relative_high, result.p_value]
