"""The marketing platform answers 500, then 429 with Retry-After, for a while, then 200; one
mailbox is busy once and another refuses every time. A bulletin run on a real worker, through
the webhook adapter, to a platform on loopback that counts what it receives by idempotency key.

Everyone is sent exactly once (no accepted key is ever sent again), the refused batches and
the busy recipient are retried, the refusing recipient gives up after BULLETIN_MAX_ATTEMPTS
with the reason, and the run's counters and the deliveries' attempts say what happened.
"""

import pytest

from bulletins.models import BulletinRun, Delivery
from bulletins.services.runs import (
    bulletin_run_start,
    bulletin_shard_prepare,
    bulletin_shard_send,
    run_shards,
)
from bulletins.tasks import bulletin_send_task
from tests.faults.conftest import BATCH, eligible_users, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

ERRORS = 3  # the first requests answer 500 (the first batch's first three attempts)
THROTTLED = 7  # the next ones 429 with Retry-After (its last two, then another batch's five)
ADAPTER_ATTEMPTS = 5  # RetryPolicy.max_attempts: the adapter's own retries of one request
MAX_ATTEMPTS = 3


@pytest.mark.services
def test_a_platform_failing_for_a_while_ends_with_everyone_sent_once(
    webhook_bulletin, platform, settings, celery_worker_on_redis
):
    settings.BULLETIN_RETRY_SECONDS = 1
    settings.BULLETIN_MAX_ATTEMPTS = MAX_ATTEMPTS
    platform.script.extend([(500, {})] * ERRORS + [(429, {"Retry-After": "1"})] * THROTTLED)
    users = list(eligible_users().order_by("pk"))
    busy, refusing = users[4 * BATCH].email, users[4 * BATCH + 1].email  # the fifth batch
    platform.refuse = {busy: 1, refusing: -1}

    bulletin_send_task.delay(webhook_bulletin.pk)
    done = wait_for(
        lambda: BulletinRun.objects.filter(status=BulletinRun.Status.DONE).exists(), timeout=120
    )

    run = BulletinRun.objects.get(bulletin=webhook_bulletin)
    assert done, f"run stayed {run.status}: {run.sent} sent, {run.failed} failed"
    deliveries = Delivery.objects.filter(run=run).order_by("pk")
    assert deliveries.count() == len(users) == run.deliveries
    assert (run.sent, run.failed) == (len(users) - 1, 1)

    # The platform: every refused request was a whole batch refused, on one of the adapter's
    # attempts; each refused push then counted one attempt of its deliveries, and no key it
    # accepted ever came again.
    assert sum(platform.refused.values()) == (ERRORS + THROTTLED) * BATCH
    refused_pushes = {key: n // ADAPTER_ATTEMPTS for key, n in platform.refused.items()}
    assert {n % ADAPTER_ATTEMPTS for n in platform.refused.values()} == {0}
    sent = deliveries.filter(status=Delivery.Status.SENT).values_list("pk", flat=True)
    sent = {str(pk) for pk in sent}
    assert set(platform.delivered) == sent and not platform.duplicates
    assert sum(platform.soft_refused.values()) == 1 + MAX_ATTEMPTS

    # The deliveries say what happened to each.
    attempts = {str(pk): n for pk, n in deliveries.values_list("pk", "attempts")}
    assert {key: attempts[key] for key in refused_pushes} == {
        key: 1 + n for key, n in refused_pushes.items()
    }
    by_email = {d.email: d for d in deliveries}
    assert by_email[busy].status == Delivery.Status.SENT and by_email[busy].attempts == 2
    gave_up = by_email[refusing]
    assert gave_up.status == Delivery.Status.FAILED and gave_up.attempts == MAX_ATTEMPTS
    assert gave_up.error == (
        f"gave up after {MAX_ATTEMPTS} attempts: webhook: mailbox full, try later"
    )
    retried = set(refused_pushes) | {str(by_email[busy].pk), str(gave_up.pk)}
    assert {n for key, n in attempts.items() if key not in retried} == {1}


def test_a_refused_batch_waits_the_retry_delay_after_its_failure(
    webhook_bulletin, platform, settings
):
    """BULLETIN_RETRY_SECONDS is the wait after a retryable failure. A batch the adapter kept
    retrying for longer than that (Retry-After, backoff) must not go again at once."""
    settings.BULLETIN_RETRY_SECONDS = 3
    platform.script.extend([(429, {"Retry-After": "1"})] * ADAPTER_ATTEMPTS)  # 4 s of waits
    run, _ = bulletin_run_start(bulletin=webhook_bulletin)
    shard = run_shards(run)[0]
    bulletin_shard_prepare(run_id=run.pk, shard=shard)

    bulletin_shard_send(run_id=run.pk, shard=shard)

    first = Delivery.objects.filter(run=run).order_by("pk")[:BATCH]
    assert {(d.status, d.attempts) for d in first} == {(Delivery.Status.RETRYABLE, 1)}
    assert not set(platform.delivered) & {str(d.pk) for d in first}
