"""A bulletin run, from start to finish, safe to re-run and to resume after a crash.

1. `bulletin_run_start` creates the run (one per `run_key`: a schedule tick delivered twice
   starts one run) and splits the audience into user-pk shards.
2. `bulletin_shard_prepare` screens a shard's users, plans each email and writes one
   `Delivery` per user (unique per run and user; a repeat writes nothing new).
3. `bulletin_shard_send` claims pending deliveries in batches (a conditional update with a
   claim token, so two workers never claim the same row), renders them, pushes the batch and
   records each recipient's answer. A delivery is only ever claimed while pending, retryable,
   or "being sent" past its lease (its worker died mid-push: it is in doubt and goes again
   with the same idempotency key, which the platform uses to drop the copy). Sent rows are
   never claimed again, so re-running a run sends nobody twice.
4. `bulletin_run_finish` recounts from the delivery rows and closes the run, or leaves it
   sending while retryable deliveries wait for their next attempt.
"""

import datetime as dt
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q
from django.utils import timezone
from tqdm import tqdm

from bulletins.models import Bulletin, BulletinRun, Delivery
from bulletins.rendering import RenderError
from bulletins.services.audience import (
    Recipient,
    audience_queryset,
    audience_screen,
    unsubscribed_pks,
)
from bulletins.services.content import deliveries_plan, email_render, items_lookup, message_of
from bulletins.services.erasure import erased_run_statuses
from bulletins.services.platforms import bulletin_adapter
from integrations.platforms import FAILED, RETRYABLE, SENT, PlatformAdapter, SendResult
from recsite.sharding import Shard, pk_shards, shards_from_bounds

MAX_CLAIM = 500


class BulletinNotReady(ValueError):
    """A bulletin that cannot be sent as it is configured."""


def bulletin_check(bulletin: Bulletin) -> None:
    if not bulletin.blocks.exists():
        raise BulletinNotReady(f"bulletin {bulletin.slug!r} has no recommendation block")
    variants = list(bulletin.variants.all())
    if variants and sum(variant.share for variant in variants) != 100:
        raise BulletinNotReady(
            f"bulletin {bulletin.slug!r}: variant shares add up to "
            f"{sum(v.share for v in variants)}, not 100"
        )


def bulletin_run_start(
    *,
    bulletin: Bulletin,
    trigger: str = BulletinRun.Trigger.ADMIN,
    run_key: str = "",
    shard_users: int | None = None,
) -> tuple[BulletinRun, bool]:
    """The run for `run_key` (a new key when empty) and whether it was created now."""
    bulletin_check(bulletin)
    run_key = run_key or f"{trigger}:{uuid.uuid4().hex}"
    existing = BulletinRun.objects.filter(bulletin=bulletin, run_key=run_key).first()
    if existing is not None:
        return existing, False
    audience, bounds = audience_shards(bulletin, shard_users=shard_users)
    try:
        with transaction.atomic():
            run = BulletinRun.objects.create(
                bulletin=bulletin,
                trigger=trigger,
                run_key=run_key,
                audience=audience,
                shards=len(bounds),
                shard_bounds=bounds,
                heartbeat_at=timezone.now(),
            )
    except IntegrityError:  # the same tick, started by another worker a moment ago
        return BulletinRun.objects.get(bulletin=bulletin, run_key=run_key), False
    return run, True


def audience_shards(
    bulletin: Bulletin, *, shard_users: int | None = None
) -> tuple[int, list[list[int]]]:
    """The audience size and its contiguous user-pk ranges of `shard_users` users each."""
    audience, shards = pk_shards(
        audience_queryset(bulletin), shard_users=shard_users or settings.BULLETIN_SHARD_USERS
    )
    return audience, [shard.as_bounds() for shard in shards]


def run_shards(run: BulletinRun) -> list[Shard]:
    return shards_from_bounds(run.shard_bounds)


def bulletin_shard_prepare(*, run_id: int, shard: Shard) -> int:
    """Write the shard's deliveries; answers how many were written (0 when done before)."""
    run = BulletinRun.objects.select_related("bulletin").get(pk=run_id)
    if shard.pk_from in run.prepared_shards:
        return 0
    bulletin = run.bulletin
    users = audience_queryset(bulletin).filter(pk__range=(shard.pk_from, shard.pk_to))
    screening = audience_screen(bulletin, users)
    plans, without_items = deliveries_plan(bulletin, screening.recipients)
    rows = [
        Delivery(
            run_id=run_id,
            user_id=plan.recipient.pk,
            variant=plan.variant,
            email=plan.recipient.email,
            items=plan.items,
            used_fallback=plan.used_fallback,
        )
        for plan in plans
    ]
    with transaction.atomic():
        run = BulletinRun.objects.select_for_update().get(pk=run_id)
        if shard.pk_from in run.prepared_shards:
            return 0  # another worker prepared it meanwhile
        Delivery.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)
        run.prepared_shards.append(shard.pk_from)
        run.skipped_not_opted_in += screening.not_opted_in
        run.skipped_unsubscribed += screening.unsubscribed
        run.skipped_no_email += screening.no_email
        run.skipped_no_items += without_items
        run.fallback += sum(1 for plan in plans if plan.used_fallback)
        if len(run.prepared_shards) == run.shards:
            run.status = BulletinRun.Status.SENDING
        run.heartbeat_at = timezone.now()
        run.save()
    return len(rows)


@dataclass
class SendCounts:
    sent: int = 0
    retryable: int = 0
    failed: int = 0
    cancelled: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: "SendCounts") -> None:
        self.sent += other.sent
        self.retryable += other.retryable
        self.failed += other.failed
        self.cancelled += other.cancelled
        self.errors = (self.errors + other.errors)[:20]


def _claimable(now: dt.datetime) -> Q:
    lease = dt.timedelta(seconds=settings.BULLETIN_CLAIM_LEASE_SECONDS)
    retry_after = dt.timedelta(seconds=settings.BULLETIN_RETRY_SECONDS)
    return (
        Q(status=Delivery.Status.PENDING)
        | Q(
            status=Delivery.Status.RETRYABLE,
            claimed_at__lte=now - retry_after,
            attempts__lt=settings.BULLETIN_MAX_ATTEMPTS,
        )
        | Q(status=Delivery.Status.SENDING, claimed_at__lte=now - lease)
    )


def deliveries_claim(*, run_id: int, shard: Shard, limit: int) -> list[Delivery]:
    """Up to `limit` deliveries of the shard, now marked as being sent by this caller only."""
    now = timezone.now()
    in_shard = Delivery.objects.filter(run_id=run_id, user__pk__range=(shard.pk_from, shard.pk_to))
    ids = list(in_shard.filter(_claimable(now)).order_by("pk").values_list("pk", flat=True)[:limit])
    if not ids:
        return []
    token = uuid.uuid4().hex
    Delivery.objects.filter(pk__in=ids).filter(_claimable(now)).update(
        status=Delivery.Status.SENDING,
        claimed_at=now,
        claim_token=token,
        attempts=F("attempts") + 1,
    )
    return list(
        Delivery.objects.filter(pk__in=ids, claim_token=token, status=Delivery.Status.SENDING)
        .select_related("user", "variant")
        .order_by("pk")
    )


def _recipient(delivery: Delivery) -> Recipient:
    user = delivery.user
    return Recipient(user.pk, user.external_id, delivery.email, user.attributes or {})


def deliveries_push(
    *, bulletin: Bulletin, deliveries: list[Delivery], adapter: PlatformAdapter
) -> SendCounts:
    """Render and push claimed deliveries; record every recipient's answer."""
    counts = SendCounts()
    now = timezone.now()
    blocks = list(bulletin.blocks.select_related("placement"))
    gone = unsubscribed_pks(bulletin, [d.user_id for d in deliveries])
    lookup = items_lookup([entry["item_id"] for d in deliveries for entry in d.items])
    to_push, messages, done = [], [], []
    for delivery in deliveries:
        if delivery.user_id in gone or not delivery.user.email_opt_in:
            delivery.status, delivery.error = Delivery.Status.CANCELLED, "unsubscribed"
            counts.cancelled += 1
            done.append(delivery)
            continue
        recipient = _recipient(delivery)
        try:
            email = email_render(
                bulletin,
                recipient=recipient,
                variant=delivery.variant,
                items=delivery.items,
                delivery_id=delivery.pk,
                blocks=blocks,
                lookup=lookup,
            )
        except RenderError as error:
            delivery.status, delivery.error = Delivery.Status.FAILED, f"render: {error}"
            counts.failed += 1
            counts.errors.append(f"delivery {delivery.pk}: {delivery.error}")
            done.append(delivery)
            continue
        delivery.size_bytes = email.size_bytes
        to_push.append(delivery)
        messages.append(message_of(recipient, delivery.pk, email))
    results = adapter.send(messages) if messages else []
    for delivery, result in zip(to_push, _aligned(messages, results), strict=True):
        _record(delivery, result, counts, now)
        done.append(delivery)
    _outcomes_write(done)
    return counts


@transaction.atomic
def _outcomes_write(deliveries: list[Delivery]) -> None:
    """One short update per row, in one transaction, each only while the row is still ours
    (a row whose lease ran out may have been claimed again). A retry waits from now: the
    adapter's own retries may have taken most of BULLETIN_RETRY_SECONDS since the claim."""
    answered_at = timezone.now()
    for delivery in deliveries:
        Delivery.objects.filter(pk=delivery.pk, claim_token=delivery.claim_token).update(
            status=delivery.status,
            error=delivery.error,
            message_id=delivery.message_id,
            sent_at=delivery.sent_at,
            size_bytes=delivery.size_bytes,
            claimed_at=answered_at,
        )


def _aligned(messages, results: list[SendResult]) -> list[SendResult]:
    by_recipient = {}
    for result in results:
        by_recipient.setdefault(result.recipient_id, []).append(result)
    aligned = []
    for message in messages:
        answers = by_recipient.get(message.recipient_id) or [
            SendResult(message.recipient_id, RETRYABLE, error="no answer for this recipient")
        ]
        aligned.append(answers.pop(0))
    return aligned


def _record(delivery: Delivery, result: SendResult, counts: SendCounts, now) -> None:
    if result.status == SENT:
        delivery.status, delivery.error = Delivery.Status.SENT, ""
        delivery.message_id, delivery.sent_at = result.message_id[:255], now
        counts.sent += 1
        return
    gave_up = delivery.attempts >= settings.BULLETIN_MAX_ATTEMPTS
    if result.status == RETRYABLE and not gave_up:
        delivery.status = Delivery.Status.RETRYABLE
        counts.retryable += 1
    else:
        delivery.status = Delivery.Status.FAILED
        counts.failed += 1
    delivery.error = result.error[:2000]
    if result.status == RETRYABLE and gave_up:
        delivery.error = f"gave up after {delivery.attempts} attempts: {delivery.error}"
    if result.status == FAILED or gave_up:
        counts.errors.append(f"delivery {delivery.pk}: {delivery.error}")


def bulletin_shard_send(
    *,
    run_id: int,
    shard: Shard,
    adapter: PlatformAdapter | None = None,
    on_batch: Callable[[SendCounts], None] | None = None,
) -> SendCounts:
    """Send every claimable delivery of the shard, batch by batch."""
    run = BulletinRun.objects.select_related("bulletin").get(pk=run_id)
    adapter = adapter or bulletin_adapter(run.bulletin)
    limit = min(MAX_CLAIM, max(adapter.max_batch, 1))
    total = SendCounts()
    while True:
        claimed = deliveries_claim(run_id=run_id, shard=shard, limit=limit)
        if not claimed:
            return total
        counts = deliveries_push(bulletin=run.bulletin, deliveries=claimed, adapter=adapter)
        total.add(counts)
        BulletinRun.objects.filter(pk=run_id).update(heartbeat_at=timezone.now())
        if on_batch is not None:
            on_batch(counts)


def run_counts_refresh(run_id: int) -> BulletinRun:
    """Recount sent/failed/cancelled and the number of deliveries from the rows themselves,
    so a redelivered task never counts twice."""
    by_status = dict(
        Delivery.objects.filter(run_id=run_id)
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    erased = erased_run_statuses(run_id=run_id)  # erased users' deliveries, as counts
    BulletinRun.objects.filter(pk=run_id).update(
        deliveries=sum(by_status.values()) + erased["deliveries"],
        sent=by_status.get(Delivery.Status.SENT, 0) + erased["sent"],
        failed=by_status.get(Delivery.Status.FAILED, 0) + erased["failed"],
        cancelled=by_status.get(Delivery.Status.CANCELLED, 0) + erased["cancelled"],
        heartbeat_at=timezone.now(),
    )
    return BulletinRun.objects.get(pk=run_id)


def outstanding(run_id: int) -> int:
    """Deliveries not settled yet: pending, being sent, or waiting for a retry."""
    return Delivery.objects.filter(
        run_id=run_id,
        status__in=[Delivery.Status.PENDING, Delivery.Status.SENDING, Delivery.Status.RETRYABLE],
    ).count()


def bulletin_run_finish(*, run_id: int) -> BulletinRun:
    """Close the run when every shard is prepared and every delivery settled; otherwise it
    stays open (answers the run either way)."""
    run = run_counts_refresh(run_id)
    if len(run.prepared_shards) == run.shards and not outstanding(run_id):
        BulletinRun.objects.filter(pk=run_id).update(
            status=BulletinRun.Status.DONE, finished_at=timezone.now()
        )
        run.refresh_from_db()
    return run


def bulletin_run_fail(*, run_id: int, error: str) -> None:
    BulletinRun.objects.filter(pk=run_id).update(
        status=BulletinRun.Status.FAILED, error=error[:5000], finished_at=timezone.now()
    )


def bulletin_run_note_error(*, run_id: int, error: str) -> BulletinRun:
    """Record what went wrong on an open run without closing it (the recovery resumes it)."""
    BulletinRun.objects.filter(pk=run_id).update(error=error[:5000])
    return BulletinRun.objects.get(pk=run_id)


def bulletin_run_in_process(
    *, run: BulletinRun, progress: bool = False, wait_for_retries: bool = True
) -> BulletinRun:
    """Prepare and send a whole run in this process (the embedded default, and the command).
    Retryable failures are tried again after BULLETIN_RETRY_SECONDS, up to the attempt limit."""
    bulletin = run.bulletin
    adapter = bulletin_adapter(bulletin)
    shards = run_shards(run)
    with tqdm(total=run.audience, desc="prepare", unit="user", disable=not progress) as bar:
        for shard in shards:
            bulletin_shard_prepare(run_id=run.pk, shard=shard)
            bar.update(_users_in(run, shard))
    with tqdm(total=outstanding(run.pk), desc="send", unit="email", disable=not progress) as bar:
        while True:
            for shard in shards:
                bulletin_shard_send(
                    run_id=run.pk,
                    shard=shard,
                    adapter=adapter,
                    on_batch=lambda c: bar.update(c.sent + c.failed + c.cancelled),
                )
            run = bulletin_run_finish(run_id=run.pk)
            waiting = retry_waiting(run.pk)
            if run.status == BulletinRun.Status.DONE or not waiting or not wait_for_retries:
                return run
            time.sleep(settings.BULLETIN_RETRY_SECONDS)


def _users_in(run: BulletinRun, shard: Shard) -> int:
    return audience_queryset(run.bulletin).filter(pk__range=(shard.pk_from, shard.pk_to)).count()


def retry_waiting(run_id: int) -> int:
    return Delivery.objects.filter(
        run_id=run_id,
        status=Delivery.Status.RETRYABLE,
        attempts__lt=settings.BULLETIN_MAX_ATTEMPTS,
    ).count()


def bulletin_runs_stalled(now: dt.datetime | None = None) -> Iterable[BulletinRun]:
    """Open runs whose workers have not reported for a lease: a worker died, or a retry is due."""
    now = now or timezone.now()
    lease = dt.timedelta(seconds=settings.BULLETIN_CLAIM_LEASE_SECONDS)
    return BulletinRun.objects.filter(
        status__in=[BulletinRun.Status.PREPARING, BulletinRun.Status.SENDING],
        heartbeat_at__lte=now - lease,
    ).select_related("bulletin")


@dataclass
class DryRun:
    audience: int = 0
    recipients: int = 0
    skipped_not_opted_in: int = 0
    skipped_unsubscribed: int = 0
    skipped_no_email: int = 0
    skipped_no_items: int = 0
    fallback: int = 0
    by_variant: dict[str, int] = field(default_factory=dict)
    largest_bytes: int = 0
    render_errors: list[str] = field(default_factory=list)


def bulletin_dry_run(*, bulletin: Bulletin, progress: bool = False) -> DryRun:
    """Everything a run would do short of writing and sending: screen, plan and render every
    email (with a placeholder delivery id), shard by shard, and count."""
    bulletin_check(bulletin)
    blocks = list(bulletin.blocks.select_related("placement"))
    variants = list(bulletin.variants.all())
    audience, bounds = audience_shards(bulletin)
    report = DryRun(audience=audience)
    with tqdm(total=audience, desc="dry run", unit="user", disable=not progress) as bar:
        for first, last in bounds:
            users = audience_queryset(bulletin).filter(pk__range=(first, last))
            screening = audience_screen(bulletin, users)
            plans, without_items = deliveries_plan(
                bulletin, screening.recipients, blocks=blocks, variants=variants
            )
            report.recipients += len(plans)
            report.skipped_not_opted_in += screening.not_opted_in
            report.skipped_unsubscribed += screening.unsubscribed
            report.skipped_no_email += screening.no_email
            report.skipped_no_items += without_items
            report.fallback += sum(1 for plan in plans if plan.used_fallback)
            _dry_render(bulletin, plans, blocks, report)
            bar.update(
                len(screening.recipients)
                + screening.not_opted_in
                + screening.unsubscribed
                + screening.no_email
            )
    return report


def _dry_render(bulletin: Bulletin, plans, blocks, report: DryRun) -> None:
    lookup = items_lookup([entry["item_id"] for plan in plans for entry in plan.items])
    for plan in plans:
        name = plan.variant.name if plan.variant else "-"
        report.by_variant[name] = report.by_variant.get(name, 0) + 1
        try:
            email = email_render(
                bulletin,
                recipient=plan.recipient,
                variant=plan.variant,
                items=plan.items,
                delivery_id=0,
                blocks=blocks,
                lookup=lookup,
            )
        except RenderError as error:
            if len(report.render_errors) < 20:
                report.render_errors.append(f"user {plan.recipient.external_id}: {error}")
            continue
        report.largest_bytes = max(report.largest_bytes, email.size_bytes)
