"""Redis restarted: the cache, the broker and the result backend on a Redis of the test's own,
stopped (SIGKILL) and started again empty, as after a crash.

- Events keep coming in while Redis is down: each request answers 200 and every event is
  stored; the refreshes that cannot be queued are logged (the nightly batch recomputes every
  list), and queuing works again once Redis is back.
- The recommendations API keeps answering while Redis is down, from the database.
- A Redis restart in the middle of a bulletin run loses the queued shard tasks and the
  chord's state; the recovery task resumes the run and everyone gets exactly one email.
"""

import logging
import time

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from bulletins.models import BulletinRun, Delivery
from bulletins.tasks import bulletin_runs_recover_task, bulletin_send_task
from recommendations.models import EndUser, Interaction
from recommendations.services.api_keys import api_key_create
from recsite.cache_keys import served_cache_key
from tests.factories import EndUserFactory, ItemFactory
from tests.faults.conftest import eligible_users, logged, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]

EVENTS = "/api/v1/events/"
SITE = "https://shop.example"
# A request that waits on Redis (a connect retry loop, the result backend's 20 reconnects)
# instead of giving up at once would take seconds; the API must not.
FAST_ENOUGH_SECONDS = 3.0


def _client(kind: str) -> APIClient:
    _, raw_key = api_key_create(name=f"{kind} key", kind=kind, allowed_origins=[SITE])
    client = APIClient(raise_request_exception=False)  # a failure is a 500, as a client sees
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


def _event(user: str, item: str, event_type: str, event_id: str) -> dict:
    return {"user_id": user, "item_id": item, "event_type": event_type, "event_id": event_id}


def _refresh_pending(user_external_id: str) -> bool:
    user_pk = EndUser.objects.get(external_id=user_external_id).pk
    return cache.get(f"refresh-pending:{user_pk}") is not None


def test_events_are_stored_while_redis_is_down_and_lost_refreshes_are_logged(
    redis_everywhere, caplog
):
    users = [EndUserFactory(external_id=f"u{n}").external_id for n in range(1, 5)]
    items = [ItemFactory(external_id=f"i{n}").external_id for n in range(1, 9)]
    server, widget = _client("secret"), _client("public")

    before = server.post(EVENTS, [_event("u1", "i1", "view", "before-1")], format="json")
    assert before.status_code == 200, before.content
    assert _refresh_pending("u1")  # Redis up: the refresh is queued

    redis_everywhere.stop()
    caplog.set_level(logging.WARNING)
    batches = [
        (server, [_event(u, items[n], "view", f"down-a-{n}") for n, u in enumerate(users)]),
        (server, [_event(u, items[n + 4], "view", f"down-b-{n}") for n, u in enumerate(users)]),
        (server, [_event(u, "i8", "purchase", f"down-c-{u}") for u in users[:2]]),
        (
            widget,
            [_event("u3", "i2", "click", "down-d-1"), _event("u3", "i3", "impression", "down-d-2")],
        ),
    ]
    answers, slowest = [], 0.0
    for client, events in batches:
        started = time.monotonic()
        answers.append(client.post(EVENTS, events, format="json", HTTP_ORIGIN=SITE))
        slowest = max(slowest, time.monotonic() - started)
    sent_while_down = sum(len(events) for _, events in batches)

    assert [answer.status_code for answer in answers] == [200] * len(batches), [
        answer.content[:200] for answer in answers
    ]
    assert sum(answer.json()["accepted"] for answer in answers) == sent_while_down == 12
    stored = Interaction.objects.filter(event_id__startswith="down-")
    assert stored.count() == sent_while_down
    assert slowest < FAST_ENOUGH_SECONDS
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    not_queued = [message for message in warnings if "refresh" in message.lower()]
    assert len(not_queued) == len(batches), warnings  # one line per request that lost it
    assert any("conversion" in message.lower() for message in warnings), warnings

    redis_everywhere.start()  # empty, as after a crash
    after = server.post(EVENTS, [_event("u2", "i1", "view", "after-1")], format="json")
    assert after.status_code == 200, after.content
    assert _refresh_pending("u2")  # queuing works again


def test_recommendations_are_served_from_the_database_while_redis_is_down(
    redis_everywhere,
    served,
    caplog,
):
    server = _client("secret")
    known = ["user-00003", "user-00007", "user-00011"]

    def ask(user: str):
        return server.get(f"/api/v1/recommendations/?user={user}&placement=for-you&k=5")

    cached = {user: [entry["id"] for entry in ask(user).json()["items"]] for user in known}
    assert all(cached.values())

    redis_everywhere.stop()
    caplog.set_level(logging.WARNING)
    answers, slowest = {}, 0.0
    for user in [*known, "visitor-never-seen", ""]:
        started = time.monotonic()
        answers[user] = ask(user)
        slowest = max(slowest, time.monotonic() - started)

    statuses = {user: answer.status_code for user, answer in answers.items()}
    assert statuses == dict.fromkeys(answers, 200), {u: a.content[:200] for u, a in answers.items()}
    # Known users get the list the database holds: the one the cache served before.
    assert {user: [e["id"] for e in answers[user].json()["items"]] for user in known} == cached
    assert answers["visitor-never-seen"].json()["items"]  # the placement's visitor list
    assert answers[""].json()["items"]
    assert slowest < FAST_ENOUGH_SECONDS
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("cache" in message.lower() for message in warnings), warnings

    redis_everywhere.start()  # empty: the next answer comes from the database, then the cache
    assert [entry["id"] for entry in ask(known[0]).json()["items"]] == cached[known[0]]
    assert cache.get(
        served_cache_key(placement_slug="for-you", source="inhouse", user_external_id=known[0])
    )


BATCHES_BEFORE_THE_CRASH = 5


# What the worker says while its broker and result backend are gone: it keeps running the
# tasks it holds (see Celery's worker_cancel_long_running_tasks_on_connection_loss) and cannot
# store their results.
@pytest.mark.filterwarnings("ignore:Exception raised outside body:RuntimeWarning")
@pytest.mark.filterwarnings("ignore::celery.exceptions.CPendingDeprecationWarning")
def test_a_redis_restart_mid_run_is_recovered_and_everyone_gets_one_email(
    redis_everywhere, webhook_bulletin, platform, settings, celery_worker_on_redis
):
    settings.BULLETIN_SHARD_USERS = 100  # 3 shards: two run, one waits in the broker
    settings.BULLETIN_CLAIM_LEASE_SECONDS = 3
    settings.BULLETIN_RETRY_SECONDS = 1
    crashed = []

    def crash_redis(number: int, keys: list[str]) -> None:
        if number == BATCHES_BEFORE_THE_CRASH:
            redis_everywhere.stop()
            crashed.append(keys)

    platform.during = crash_redis
    with logged("celery.worker.consumer.consumer", logging.WARNING) as worker_lines:
        bulletin_send_task.delay(webhook_bulletin.pk)
        assert wait_for(lambda: crashed, timeout=60), "the run never reached its fifth batch"
        time.sleep(2)  # down for a while: the worker loses its broker, queued tasks are lost
        redis_everywhere.start()

        run = BulletinRun.objects.get(bulletin=webhook_bulletin)
        assert len(run.prepared_shards) < run.shards  # the waiting shard's task went with Redis
        resumed: list[int] = []

        def recover() -> None:  # what beat runs every 5 minutes
            resumed.extend(bulletin_runs_recover_task.delay().get(timeout=10))

        done = wait_for(
            lambda: BulletinRun.objects.get(pk=run.pk).status == BulletinRun.Status.DONE,
            timeout=90,
            every=2,
            action=recover,
        )
    run.refresh_from_db()
    assert done, f"run stayed {run.status} ({run.sent} sent): {run.error}"
    assert any("Connection to broker lost" in r.getMessage() for r in worker_lines)
    assert run.pk in resumed  # the recovery task is what finished it
    deliveries = Delivery.objects.filter(run=run)
    assert deliveries.count() == eligible_users().count() == run.sent == run.deliveries
    assert set(deliveries.values_list("status", flat=True)) == {Delivery.Status.SENT}
    keys = {str(pk) for pk in deliveries.values_list("pk", flat=True)}
    assert set(platform.delivered) == keys  # nobody lost
    assert not platform.duplicates  # nobody twice: nothing was in doubt
    assert set(deliveries.values_list("attempts", flat=True)) == {1}
