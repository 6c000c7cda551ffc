"""Who a bulletin goes to. The audience is every user with an email address (or the members
of the bulletin's segments); of those, users who did not opt in, unsubscribed (from this
bulletin or all) or have no address are skipped and counted, never sent to."""

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db.models import Q, QuerySet
from django.utils import timezone

from bulletins.models import Bulletin, BulletinRun, Unsubscribe, Variant
from bulletins.services.erasure import suppressed_emails
from recommendations.models import EndUser, SegmentMembership
from recommendations.services.experiments import arm_for


@dataclass(frozen=True)
class Recipient:
    pk: int
    external_id: str
    email: str
    attributes: dict


@dataclass
class Screening:
    """The users of a slice of the audience: who gets an email, and who is skipped why."""

    recipients: list[Recipient]
    not_opted_in: int = 0
    unsubscribed: int = 0
    no_email: int = 0


def audience_queryset(bulletin: Bulletin) -> QuerySet[EndUser]:
    """Everyone the bulletin addresses before screening (known users; segment members if
    the bulletin names segments)."""
    users = EndUser.objects.filter(is_anonymous=False)
    segment_ids = list(bulletin.segments.values_list("pk", flat=True))
    if segment_ids:
        members = SegmentMembership.objects.filter(segment_id__in=segment_ids).values("user_id")
        users = users.filter(pk__in=members)
    return users


def unsubscribed_pks(bulletin: Bulletin, user_pks: Sequence[int]) -> set[int]:
    """Users who unsubscribed from the bulletin (or all), and users whose address an erased
    user had unsubscribed (a `Suppression`: the customer imported it again)."""
    rows = Unsubscribe.objects.filter(user_id__in=list(user_pks)).filter(
        Q(bulletin=bulletin) | Q(bulletin__isnull=True)
    )
    addresses = list(
        EndUser.objects.filter(pk__in=list(user_pks)).exclude(email="").values_list("pk", "email")
    )
    suppressed = suppressed_emails(bulletin, [email for _, email in addresses])
    return set(rows.values_list("user_id", flat=True)) | {
        pk for pk, email in addresses if email in suppressed
    }


def audience_screen(bulletin: Bulletin, users: QuerySet[EndUser]) -> Screening:
    rows = list(
        users.order_by("pk").values_list("pk", "external_id", "email", "email_opt_in", "attributes")
    )
    unsubscribed = unsubscribed_pks(bulletin, [row[0] for row in rows])
    screening = Screening(recipients=[])
    for pk, external_id, email, opted_in, attributes in rows:
        if not opted_in:
            screening.not_opted_in += 1
        elif pk in unsubscribed:
            screening.unsubscribed += 1
        elif not email:
            screening.no_email += 1
        else:
            screening.recipients.append(Recipient(pk, external_id, email, attributes or {}))
    return screening


def variant_for(variants: Sequence[Variant], salt: str, external_id: str) -> Variant | None:
    """The arm a user falls in (None: the bulletin has no variants)."""
    return arm_for(variants, salt, external_id)


REPEAT_WINDOW = dt.timedelta(hours=24)


@dataclass
class SendForecast:
    """What "Send now" would do: who gets an email, who is skipped why, how the recipients
    split over the arms, and the run of the last 24 hours a second send would repeat."""

    recipients: int
    not_opted_in: int
    unsubscribed: int
    no_email: int
    arms: list[tuple[str, int]] = field(default_factory=list)
    recent_run: BulletinRun | None = None


def send_forecast(bulletin: Bulletin, *, now: dt.datetime | None = None) -> SendForecast:
    screening = audience_screen(bulletin, audience_queryset(bulletin))
    variants = list(bulletin.variants.all())
    arms: list[tuple[str, int]] = []
    if variants:
        sizes = Counter(
            variant_for(variants, bulletin.slug, recipient.external_id).name
            for recipient in screening.recipients
        )
        arms = [(variant.name, sizes.get(variant.name, 0)) for variant in variants]
    since = (now or timezone.now()) - REPEAT_WINDOW
    recent = (
        BulletinRun.objects.filter(bulletin=bulletin, started_at__gte=since)
        .exclude(status=BulletinRun.Status.FAILED, sent=0)  # a failed run may have sent some
        .order_by("-started_at")
        .first()
    )
    return SendForecast(
        recipients=len(screening.recipients),
        not_opted_in=screening.not_opted_in,
        unsubscribed=screening.unsubscribed,
        no_email=screening.no_email,
        arms=arms,
        recent_run=recent,
    )
