"""What bulletins do when an end user is erased (`recommendations.services.erasure`).

The user's deliveries, clicks, opens, conversions and unsubscribes go. Before they do, what
they added to each bulletin's experiment report and to its runs' counts is added to
`ErasedContribution` rows: plain counts per bulletin, run, arm, position and day, summed over
every erased user with the same key, holding no user, address or id. The report
(`bulletins.services.reports`) and the run recount (`bulletins.services.runs`) add them to
what they count from the live rows, so the totals do not change.

The contribution is the report's own arithmetic (`bulletins.selectors`) run over the user's
deliveries alone (the report counts people, and the user is one person), so it always means
what the report means.

An address that had unsubscribed stays suppressed: a `Suppression` keeps the SHA-256 of the
address (and the bulletin, or none for all), so if the customer's systems import it again it
is still not emailed. The address itself is not kept.
"""

import hashlib
from collections import Counter
from collections.abc import Iterable

from django.db.models import F, Q, QuerySet, Sum

from bulletins import models as bulletin_models
from bulletins.models import Click, Conversion, Delivery, Open, Unsubscribe
from bulletins.selectors import (
    delivery_counts_by,
    delivery_counts_by_day,
    delivery_counts_by_position,
)
from recommendations.models import EndUser
from recommendations.services.erasure import Erased

# The report's counts kept per arm and run; per position; per day; and the run's deliveries
# by status (what `run_counts_refresh` recounts).
REPORT_FIELDS = ("delivered", "openers", "clickers", "clicks", "converters", "conversions", "value")
POSITION_FIELDS = ("clickers", "clicks", "converters", "conversions", "value")
DAY_FIELDS = ("clicks", "conversions")
STATUS_FIELDS = ("deliveries", "sent", "failed", "cancelled")
# A delivery not settled when its user is erased will never be sent: it counts as cancelled.
STATUS_COUNTED_AS = {
    Delivery.Status.SENT: "sent",
    Delivery.Status.FAILED: "failed",
}


def user_bulletins_forget(sender, *, user: EndUser, **kwargs) -> Erased:
    """`user_forgetting` receiver: keep the user's contribution as counts and their
    unsubscribes as hashed suppressions, then delete their bulletin rows."""
    erased = Erased()
    erased.kept.update(contributions_keep(user=user))
    erased.kept.update(suppressions_keep(user=user))
    for queryset in (
        Conversion.objects.filter(
            Q(user=user) | Q(click__user=user) | Q(click__delivery__user=user)
        ),
        Click.objects.filter(Q(user=user) | Q(delivery__user=user)),
        Open.objects.filter(delivery__user=user),
        Unsubscribe.objects.filter(user=user),
        Delivery.objects.filter(user=user),
    ):
        erased.removed.update(queryset.delete()[1])
    return erased


# ---------------------------------------------------------------------------------------------
# Keeping the counts


def contributions_keep(*, user: EndUser) -> Counter:
    """Add what the user's deliveries added to each bulletin's report and runs to the
    `ErasedContribution` rows; answers the rows written per model label."""
    written: Counter = Counter()
    theirs = Delivery.objects.filter(user=user)
    sent = theirs.filter(status=Delivery.Status.SENT)
    bulletin_ids = list(theirs.values_list("run__bulletin", flat=True).distinct().order_by())
    if not bulletin_ids:
        return written
    Scope = bulletin_models.ErasedContribution.Scope
    for bulletin_id in bulletin_ids:
        # Per arm over all the bulletin's runs: people, so counted over all their emails.
        for variant_id, counts in delivery_counts_by(
            sent.filter(run__bulletin_id=bulletin_id), "variant_id"
        ).items():
            written += _add(
                bulletin_id, Scope.ARM, {"variant_id": variant_id}, counts, REPORT_FIELDS
            )
        for delivery in theirs.filter(run__bulletin_id=bulletin_id).order_by("pk"):
            one = sent.filter(pk=delivery.pk)
            status = STATUS_COUNTED_AS.get(delivery.status, "cancelled")
            run_counts = delivery_counts_by(one, "run_id").get(delivery.run_id)
            written += _add(
                bulletin_id,
                Scope.RUN,
                {"run_id": delivery.run_id, "variant_id": delivery.variant_id},
                run_counts,
                REPORT_FIELDS,
                statuses={"deliveries": 1, status: 1},
            )
            for position, counts in delivery_counts_by_position(one):
                key = {"run_id": delivery.run_id, "position": position}
                written += _add(bulletin_id, Scope.POSITION, key, counts, POSITION_FIELDS)
            for day, clicks, conversions in delivery_counts_by_day(one):
                key = {"run_id": delivery.run_id, "day": day}
                values = {"clicks": clicks, "conversions": conversions}
                written += _add(bulletin_id, Scope.DAY, key, values, DAY_FIELDS)
    return written


def _add(bulletin_id, scope, key: dict, counts, fields, *, statuses=None) -> Counter:
    """Add `counts` (a report `Counts`, a dict, or None) to the row of `key`, creating it."""
    increments = {
        name: (counts.get(name, 0) if isinstance(counts, dict) else getattr(counts, name))
        for name in fields
        if counts is not None
    }
    increments |= statuses or {}
    increments = {name: value for name, value in increments.items() if value}
    if not increments:
        return Counter()
    model = bulletin_models.ErasedContribution
    rows = model.objects.filter(bulletin_id=bulletin_id, scope=scope, **_full_key(key))
    # Two erasures creating the same key at once leave two rows: the sums stay right.
    if not rows.update(**{name: F(name) + value for name, value in increments.items()}):
        model.objects.create(bulletin_id=bulletin_id, scope=scope, **_full_key(key), **increments)
    return Counter({model._meta.label: 1})


def _full_key(key: dict) -> dict:
    return {"run_id": None, "variant_id": None, "position": None, "day": None} | key


# ---------------------------------------------------------------------------------------------
# Reading the counts back (bulletins.services.reports, bulletins.services.runs)


def _sums(rows: QuerySet, by: str, fields: Iterable[str]) -> dict:
    return {
        row.pop(by): {name: row[name] or 0 for name in fields}
        for row in rows.values(by).annotate(**{name: Sum(name) for name in fields}).order_by()
    }


def _rows(bulletin, scope, run=None) -> QuerySet:
    rows = bulletin_models.ErasedContribution.objects.filter(bulletin=bulletin, scope=scope)
    return rows.filter(run=run) if run is not None else rows


def erased_by_arm(*, bulletin, run=None) -> dict:
    """variant id (None: no arm) -> the erased users' counts, over all runs or in `run`."""
    Scope = bulletin_models.ErasedContribution.Scope
    rows = _rows(bulletin, Scope.RUN, run) if run is not None else _rows(bulletin, Scope.ARM)
    return _sums(rows, "variant_id", REPORT_FIELDS)


def erased_by_run(*, bulletin, run=None) -> dict:
    """run id -> the erased users' counts in that run."""
    return _sums(
        _rows(bulletin, bulletin_models.ErasedContribution.Scope.RUN, run), "run_id", REPORT_FIELDS
    )


def erased_by_position(*, bulletin, run=None) -> tuple[int, dict]:
    """(the erased users' sent emails, position -> their counts at that position)."""
    Scope = bulletin_models.ErasedContribution.Scope
    emails = _rows(bulletin, Scope.RUN, run).aggregate(n=Sum("delivered"))["n"] or 0
    return emails, _sums(_rows(bulletin, Scope.POSITION, run), "position", POSITION_FIELDS)


def erased_by_day(*, bulletin, run=None) -> dict:
    """day -> (the erased users' human clicks, conversions) on that day."""
    sums = _sums(
        _rows(bulletin, bulletin_models.ErasedContribution.Scope.DAY, run), "day", DAY_FIELDS
    )
    return {day: (row["clicks"], row["conversions"]) for day, row in sums.items()}


def erased_run_statuses(*, run_id: int) -> dict[str, int]:
    """The erased users' deliveries of the run by status (deliveries, sent, failed,
    cancelled), for the run's recount."""
    model = bulletin_models.ErasedContribution
    sums = model.objects.filter(run_id=run_id, scope=model.Scope.RUN).aggregate(
        **{name: Sum(name) for name in STATUS_FIELDS}
    )
    return {name: sums[name] or 0 for name in STATUS_FIELDS}


# ---------------------------------------------------------------------------------------------
# Suppressions


def email_hash(email: str) -> str:
    """SHA-256 of the address as mail systems compare it (trimmed, lower case). Unkeyed on
    purpose: rotating SECRET_KEY must never lift a suppression."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def suppressions_keep(*, user: EndUser) -> Counter:
    """One suppression per address the user unsubscribed with (their address now, and the
    one each unsubscribed email went to) and per bulletin (or all bulletins)."""
    written: Counter = Counter()
    unsubscribes = list(Unsubscribe.objects.filter(user=user).select_related("delivery"))
    if not unsubscribes:
        return written
    model = bulletin_models.Suppression
    for unsubscribe in unsubscribes:
        addresses = {user.email, unsubscribe.delivery.email if unsubscribe.delivery else ""}
        for address in sorted(filter(None, addresses)):
            _, created = model.objects.get_or_create(
                email_sha256=email_hash(address), bulletin_id=unsubscribe.bulletin_id
            )
            written[model._meta.label] += created
    return written


def suppressed_emails(bulletin, emails: Iterable[str]) -> set[str]:
    """Which of `emails` an erased user's unsubscribe suppresses for `bulletin`."""
    by_hash = {email_hash(email): email for email in emails if email}
    if not by_hash:
        return set()
    hashes = bulletin_models.Suppression.objects.filter(
        Q(bulletin=bulletin) | Q(bulletin__isnull=True), email_sha256__in=list(by_hash)
    ).values_list("email_sha256", flat=True)
    return {by_hash[value] for value in hashes}
