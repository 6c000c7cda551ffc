"""What the bulletins and the website widgets did: per experiment arm (with uplift over the
control), per position, per run (bulletins) and per day.

Bulletins (`experiment_report`) are counted from the delivery, open, click and conversion rows.
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

Website widgets (`widget_report`) are counted the same way, from the widget's impression
events, its human clicks and their conversions; see `widget_report`.
"""

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from django.db.models import Count, QuerySet, Sum
from django.db.models.fields.json import KT
from django.utils import timezone

from bulletins.models import Bulletin, BulletinRun, Click, Conversion, Delivery, Variant
from bulletins.selectors import (
    Counts,
    counts_plus_erased,
    daily_counts,
    delivery_counts_by,
    delivery_counts_by_day,
    delivery_counts_by_position,
)
from bulletins.services.erasure import (
    erased_by_arm,
    erased_by_day,
    erased_by_position,
    erased_by_run,
)
from bulletins.stats import Uplift, uplift
from recommendations.models import Interaction, Placement, PlacementVariant

NO_VARIANT = "(all)"
OUTSIDE_ARMS = "(no arm)"
IMPRESSION = "impression"  # the event type the widget reports what it showed with
# Placements have no field for it; see `widget_report`.
WIDGET_MIN_DETECTABLE_UPLIFT = 0.10


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


Arm = Variant | PlacementVariant


def _control(variants: Sequence[Arm]) -> Arm | None:
    return next((v for v in variants if v.is_control), variants[0] if variants else None)


def _uplift(control: Counts, arm: Counts, successes: str) -> Uplift:
    return uplift(
        control_successes=getattr(control, successes),
        control_trials=control.delivered,
        variant_successes=getattr(arm, successes),
        variant_trials=arm.delivered,
    )


def _arm_rows(
    variants: Sequence[Arm],
    counts: dict,
    *,
    key: Callable[[Arm], Any],
    wanted: float,
    everyone: str,
) -> list[ArmRow]:
    """One row per arm, each but the control with its uplifts over the control and the
    sample-size warning; without arms, one row (`everyone` is its source) for the `None` key.
    `counts` is keyed by `key(arm)`."""
    control = _control(variants)
    control_counts = counts.get(key(control) if control else None, Counts())
    rows = []
    for variant in variants or [None]:
        arm_counts = counts.get(key(variant) if variant else None, Counts())
        row = ArmRow(
            name=variant.name if variant else NO_VARIANT,
            source=variant.get_source_display() if variant else everyone,
            is_control=variant is not None and variant == control,
            share=variant.share if variant else None,
            counts=arm_counts,
        )
        if variant is not None and variant != control:
            ctr_uplift = _uplift(control_counts, arm_counts, "clickers")
            row = replace(
                row,
                ctr_uplift=ctr_uplift,
                conversion_uplift=_uplift(control_counts, arm_counts, "converters"),
                warning=ctr_uplift.underpowered(relative_uplift_wanted=wanted),
            )
        rows.append(row)
    return rows


def experiment_report(*, bulletin: Bulletin, run: BulletinRun | None = None) -> ExperimentReport:
    """The bulletin's arms over all its runs (or one run), each against the control."""
    deliveries = Delivery.objects.filter(run__bulletin=bulletin, status=Delivery.Status.SENT)
    if run is not None:
        deliveries = deliveries.filter(run=run)
    variants = list(bulletin.variants.all())
    control = _control(variants)
    wanted = bulletin.min_detectable_uplift / 100
    return ExperimentReport(
        bulletin=bulletin,
        run=run,
        arms=_arm_rows(
            variants,
            counts_plus_erased(
                delivery_counts_by(deliveries, "variant_id"),
                erased_by_arm(bulletin=bulletin, run=run),
            ),
            key=lambda variant: variant.pk,
            wanted=wanted,
            everyone="as each placement is set",
        ),
        control=control.name if control else None,
        min_detectable_uplift=wanted,
        by_position=delivery_counts_by_position(
            deliveries, erased=erased_by_position(bulletin=bulletin, run=run)
        ),
        by_run=_by_run(deliveries, erased=erased_by_run(bulletin=bulletin, run=run)),
        by_day=delivery_counts_by_day(deliveries, erased=erased_by_day(bulletin=bulletin, run=run)),
    )


def _by_run(
    deliveries: QuerySet[Delivery], erased: dict | None = None
) -> list[tuple[BulletinRun, Counts]]:
    counts = counts_plus_erased(delivery_counts_by(deliveries, "run_id"), erased or {})
    runs = BulletinRun.objects.filter(pk__in=list(counts)).order_by("-started_at")
    return [(run, counts[run.pk]) for run in runs]


UPLIFT_COLUMNS = [
    "ctr_uplift", "ctr_uplift_low", "ctr_uplift_high", "ctr_p_value",
    "conversion_uplift", "conversion_uplift_low", "conversion_uplift_high", "conversion_p_value",
]  # fmt: skip


def _csv_line(section: str, name: str, cells: list, arm: ArmRow | None = None) -> list:
    ctr, conv = (arm.ctr_uplift, arm.conversion_uplift) if arm else (None, None)
    return [section, name, *cells, *_uplift_cells(ctr), *_uplift_cells(conv)]


def report_rows(report: ExperimentReport) -> list[list]:
    """The report as CSV rows: one per arm, then one per position and per run."""
    header = [
        "section", "name", "delivered", "openers", "clickers", "clicks", "converters",
        "conversions", "value", "open_rate", "ctr", "click_to_open", "conversion_rate",
        *UPLIFT_COLUMNS,
    ]  # fmt: skip

    def line(section: str, name: str, counts: Counts, arm: ArmRow | None = None) -> list:
        cells = [
            counts.delivered, counts.openers, counts.clickers, counts.clicks, counts.converters,
            counts.conversions, round(counts.value, 2), counts.open_rate, counts.ctr,
            counts.click_to_open, counts.conversion_rate,
        ]  # fmt: skip
        return _csv_line(section, name, cells, arm)

    rows = [header]
    rows += [line("arm", arm.name, arm.counts, arm) for arm in report.arms]
    rows += [line("position", str(position), counts) for position, counts in report.by_position]
    rows += [line("run", f"#{run.pk} {run.started_at:%Y-%m-%d}", c) for run, c in report.by_run]
    return rows


def _uplift_cells(result: Uplift | None) -> list:
    if result is None:
        return [None] * 4
    return [result.relative_uplift, result.relative_low, result.relative_high, result.p_value]


# ---------------------------------------------------------------------------------------------
# Website widgets


@dataclass(frozen=True)
class WidgetReport:
    placement: Placement
    days: int | None  # the last N days, or None: everything
    arms: list[ArmRow]
    control: str | None
    min_detectable_uplift: float
    by_position: list[tuple[int, Counts]] = field(default_factory=list)
    by_day: list[tuple[dt.date, int, int, int]] = field(default_factory=list)  # imps, clicks, convs
    unidentified_clicks: int = 0  # human clicks of visitors the widget did not know


@dataclass(frozen=True)
class _Key:
    """What a widget count is grouped by, as impressions, clicks and conversions spell it;
    `parse` turns a value into the key (None: outside the arms), or into `_SKIP` when it names
    none (a position that is not a number)."""

    impression: Any
    click: str
    conversion: str
    parse: Callable[[Any], Any]


_SKIP = object()


def _position(value: Any) -> Any:
    """An impression's position as the widget sent it (in JSON: a number, or a string)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return _SKIP


POSITION = _Key(KT("context__position"), "position", "position", parse=_position)


def _arm_key(arms: Sequence[PlacementVariant]) -> _Key:
    """Arms by name (the widget sends the arm's name); a name no arm has now (an arm renamed or
    deleted, or none sent) is outside the arms: None."""
    names = {arm.name for arm in arms}
    return _Key(
        KT("context__variant"),
        "placement_variant__name",
        "placement_variant__name",
        parse=lambda name: name if name in names else None,
    )


def _impressions(placement: Placement, since: dt.datetime | None) -> QuerySet[Interaction]:
    impressions = Interaction.objects.filter(
        event_type__name=IMPRESSION, context__placement=placement.slug
    )
    return impressions.filter(timestamp__gte=since) if since else impressions


def _human_clicks(placement: Placement, since: dt.datetime | None) -> QuerySet[Click]:
    clicks = Click.objects.filter(channel=Click.Channel.WIDGET, placement=placement, is_human=True)
    return clicks.filter(created_at__gte=since) if since else clicks


def _attributed(placement: Placement, since: dt.datetime | None) -> QuerySet[Conversion]:
    """Conversions of the window's human widget clicks (by the click's time, so a converter
    is always one of the window's clickers)."""
    conversions = Conversion.objects.filter(
        channel=Click.Channel.WIDGET, placement=placement, click__is_human=True
    )
    return conversions.filter(click__created_at__gte=since) if since else conversions


def _widget_counts(placement: Placement, since: dt.datetime | None, key: _Key) -> dict:
    """Counts per key: visitors shown the widget (people with an impression, or with a human
    click or conversion, whose impression event was lost), impressions, clickers, human
    clicks, converters, conversions and their value."""
    impressions = _impressions(placement, since).annotate(key=key.impression)
    seen: dict = defaultdict(int)
    people_seen: dict = defaultdict(int)
    for row in impressions.values("key").annotate(
        n=Count("pk"), people=Count("user", distinct=True)
    ):
        bucket = key.parse(row["key"])
        if bucket is not _SKIP:
            seen[bucket] += row["n"]
            people_seen[bucket] += row["people"]
    clicks = _human_clicks(placement, since)
    clickers: dict = defaultdict(set)
    click_counts: dict = defaultdict(int)
    for row in clicks.values(key.click, "user").annotate(n=Count("pk")):
        bucket = key.parse(row[key.click])
        click_counts[bucket] += row["n"]
        if row["user"] is not None:  # a visitor the widget did not know is nobody to count
            clickers[bucket].add(row["user"])
    converters: dict = defaultdict(set)
    conversions: dict = defaultdict(int)
    worth: dict = defaultdict(float)
    for row in (
        _attributed(placement, since)
        .values(key.conversion, "user")
        .annotate(n=Count("pk"), value=Sum("value"))
    ):
        bucket = key.parse(row[key.conversion])
        converters[bucket].add(row["user"])
        conversions[bucket] += row["n"]
        worth[bucket] += row["value"] or 0.0
    # A clicker whose impression never arrived (blocked, or the tab closed first) was shown
    # the widget all the same: counted as a visitor, so a rate never passes 100%.
    with_impression: dict = defaultdict(set)
    for raw, user in (
        impressions.filter(user__in=clicks.exclude(user=None).values("user"))
        .values_list("key", "user")
        .distinct()
    ):
        with_impression[key.parse(raw)].add(user)
    counts = {}
    for bucket in set(seen) | set(click_counts) | set(conversions):
        unseen = (clickers[bucket] | converters[bucket]) - with_impression[bucket]
        counts[bucket] = Counts(
            delivered=people_seen[bucket] + len(unseen),
            clickers=len(clickers[bucket]),
            clicks=click_counts[bucket],
            converters=len(converters[bucket]),
            conversions=conversions[bucket],
            value=worth[bucket],
            impressions=seen[bucket],
        )
    return counts


def widget_report(
    *,
    placement: Placement,
    days: int | None = None,
    min_detectable_uplift: float = WIDGET_MIN_DETECTABLE_UPLIFT,
) -> WidgetReport:
    """How a placement's website widget did over the last `days` days (None: all along): per
    experiment arm, each against the control, per position and per day.

    Counted from the widget's `impression` events (one per item shown, whose context names the
    placement, the arm and the position), its human clicks (`Click`, channel widget, with the
    arm from the link's token) and the conversions attributed to them. As in the bulletins'
    report the unit is the person: `delivered` counts the visitors shown the widget (people
    with at least one impression; a clicker whose impression event was lost counts too),
    `clickers` the people with a human click, `converters` those with a conversion; CTR is
    clickers over visitors shown. A visitor stays in their arm (a stable hash of placement and
    visitor) and sees the widget on many pages, so their impressions are not independent
    trials: counting impressions would make the intervals far too narrow. `impressions` and
    `clicks` (repeats included) are there for volume. Per position the unit is the same:
    people shown something at that position, and people who clicked it. Clicks of visitors the
    widget did not know (no profile when it was served) count as clicks but cannot be tied to
    a person: they are left out of clickers and counted in `unidentified_clicks`.

    `min_detectable_uplift` (a fraction) is the relative CTR uplift the sample-size warning
    checks for. Placements have no field for it, unlike bulletins: a placement is set up for
    what it shows, and the uplift worth detecting is the reader's question ("could these arms
    see +5%?"), asked in the report without editing the placement. The default, +10%, is the
    bulletins' default, so both reports warn on the same terms: about the smallest change in a
    recommendation widget worth switching sources for. At a few percent CTR it takes tens of
    thousands of visitors per arm, which a site-wide widget reaches in days.
    """
    since = timezone.now() - dt.timedelta(days=days) if days else None
    arms = list(placement.variants.order_by("pk"))
    control = _control(arms)
    by_arm = _widget_counts(placement, since, _arm_key(arms))
    rows = _arm_rows(
        arms,
        by_arm,
        key=lambda arm: arm.name,
        wanted=min_detectable_uplift,
        everyone=PlacementVariant.Source.PLACEMENT.label,
    )
    if arms and by_arm.get(None, Counts()).delivered:
        rows.append(
            ArmRow(
                name=OUTSIDE_ARMS,
                source="outside the experiment (before it, or an arm since removed)",
                is_control=False,
                share=None,
                counts=by_arm[None],
            )
        )
    by_position = _widget_counts(placement, since, POSITION)
    clicks = _human_clicks(placement, since)
    return WidgetReport(
        placement=placement,
        days=days,
        arms=rows,
        control=control.name if control else None,
        min_detectable_uplift=min_detectable_uplift,
        by_position=sorted(by_position.items()),
        by_day=daily_counts(
            (_impressions(placement, since), "timestamp"),
            (clicks, "created_at"),
            (_attributed(placement, since), "converted_at"),
        ),
        unidentified_clicks=clicks.filter(user=None).count(),
    )


def widget_report_rows(report: WidgetReport) -> list[list]:
    """The widget report as CSV rows: one per arm, then one per position and per day."""
    header = [
        "section", "name", "visitors", "impressions", "clickers", "clicks", "converters",
        "conversions", "value", "ctr", "conversion_rate", *UPLIFT_COLUMNS,
    ]  # fmt: skip

    def line(section: str, name: str, counts: Counts, arm: ArmRow | None = None) -> list:
        cells = [
            counts.delivered, counts.impressions, counts.clickers, counts.clicks,
            counts.converters, counts.conversions, round(counts.value, 2), counts.ctr,
            counts.conversion_rate,
        ]  # fmt: skip
        return _csv_line(section, name, cells, arm)

    rows = [header]
    rows += [line("arm", arm.name, arm.counts, arm) for arm in report.arms]
    rows += [line("position", str(position), counts) for position, counts in report.by_position]
    rows += [
        _csv_line("day", f"{day:%Y-%m-%d}", [None, imps, None, clicks, None, convs, *[None] * 3])
        for day, imps, clicks, convs in report.by_day
    ]
    return rows
