"""PostgreSQL connections dropped (`pg_terminate_backend`, as a failover or a restarted
pooler does) under a real Celery worker and a real WSGI server.

- A bulletin shard whose connection dies while its batch is at the platform: the task
  retries (`autoretry_for` OperationalError/InterfaceError), the batch in doubt goes again
  after its lease with the same idempotency keys, and everyone is sent exactly once.
- A recommendation shard whose connection dies before it writes: retried, every list written
  and the shard counted once.
- The task that closes a recommendation run losing its connection must not leave the run
  "running" for ever.
- The events API after its connection was dropped between two requests: the next request
  reconnects (CONN_HEALTH_CHECKS) and its events are stored.

Only connections to the test database (made for this session) are terminated.
"""

import logging
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
import requests
from django.core.handlers.wsgi import WSGIHandler

from bulletins.models import BulletinRun, Delivery
from bulletins.tasks import bulletin_runs_recover_task, bulletin_send_task
from recommendations import tasks as recommendation_tasks
from recommendations.models import EndUser, Interaction, RecommendationRun, RecommendationSet
from recommendations.selectors import personalized_placements
from recommendations.services import recommending
from recommendations.services.api_keys import api_key_create
from tests.conftest import require_postgres
from tests.factories import EndUserFactory, ItemFactory
from tests.faults.conftest import (
    BATCH,
    eligible_users,
    logged,
    pg_backend_pid,
    pg_others,
    pg_terminate,
    wait_for,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]

DROP_ON_BATCH = 3


@pytest.fixture
def on_postgres(transactional_db):
    """PostgreSQL; the connections the test's threads leave open are closed at the end.
    (Tests take their own connection's pid once their fixtures are up: a worker starting
    closes the connections of the thread that starts it.)"""
    require_postgres()
    yield
    pg_terminate(spare={pg_backend_pid()})


def _retries(lines: list[logging.LogRecord]) -> list[str]:
    return [r.getMessage() for r in lines if " retry: " in r.getMessage()]


def test_a_bulletin_shard_whose_connection_drops_mid_push_sends_everyone_once(
    on_postgres, webhook_bulletin, platform, settings, celery_worker_on_redis
):
    settings.BULLETIN_CLAIM_LEASE_SECONDS = 3
    settings.BULLETIN_RETRY_SECONDS = 1
    mine = pg_backend_pid()
    dropped: dict[str, list] = {}

    def drop_the_workers_connections(number: int, keys: list[str]) -> None:
        if number == DROP_ON_BATCH:  # the batch has arrived; its sender has not heard back
            dropped["pids"] = pg_terminate(spare={mine})
            dropped["keys"] = keys

    platform.during = drop_the_workers_connections
    with logged("celery.app.trace") as trace:
        bulletin_send_task.delay(webhook_bulletin.pk)
        assert wait_for(lambda: "keys" in dropped, timeout=60), "never reached the third batch"
        run = BulletinRun.objects.get(bulletin=webhook_bulletin)
        done = wait_for(
            lambda: BulletinRun.objects.get(pk=run.pk).status == BulletinRun.Status.DONE,
            timeout=90,
            every=2,
            action=lambda: bulletin_runs_recover_task.delay(),  # beat's every 5 minutes
        )

    run.refresh_from_db()
    assert done, f"run stayed {run.status}: {run.error}"
    assert dropped["pids"]
    retried = _retries(trace)
    assert any("bulletin_shard_task" in line and "terminat" in line for line in retried), retried
    deliveries = Delivery.objects.filter(run=run)
    assert deliveries.count() == eligible_users().count() == run.sent
    assert set(deliveries.values_list("status", flat=True)) == {Delivery.Status.SENT}
    keys = {str(pk) for pk in deliveries.values_list("pk", flat=True)}
    assert set(platform.delivered) == keys  # nobody lost
    # The batch in flight went again (its outcome was never recorded) with the same keys,
    # which the platform dropped: nobody got two emails.
    in_doubt = set(dropped["keys"])
    assert set(platform.duplicates) == in_doubt and len(in_doubt) == BATCH
    assert set(deliveries.filter(pk__in=in_doubt).values_list("attempts", flat=True)) == {2}
    assert set(deliveries.exclude(pk__in=in_doubt).values_list("attempts", flat=True)) == {1}


def _drop_own_connection_first(monkeypatch, module, name: str) -> list[int]:
    """Make the first call of `module.name` lose its database connection, as the worker's
    would when the server terminates it. Answers the connections (pids) of its calls: the
    first is the one dropped."""
    original = getattr(module, name)
    calls: list[int] = []
    lock = threading.Lock()

    def dropping(*args, **kwargs):
        pid = pg_backend_pid()
        with lock:  # shards run side by side: only the first call loses its connection
            first = not calls
            calls.append(pid)
        if first:
            pg_terminate(only={pid})
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, dropping)
    return calls


def _run_done() -> bool:
    runs = RecommendationRun.objects.all()
    return runs.exists() and runs.get().status == RecommendationRun.Status.DONE


def test_a_recommendation_shard_whose_connection_drops_is_retried_and_every_list_written(
    on_postgres, trained, monkeypatch, celery_worker_on_redis
):
    calls = _drop_own_connection_first(monkeypatch, recommending, "lists_write")

    with logged("celery.app.trace") as trace:
        recommendation_tasks.recommendations_compute_all_task.delay(shard_users=100)
        done = wait_for(_run_done, timeout=90)

    run = RecommendationRun.objects.get()
    assert done, f"run stayed {run.status}: {run.shards_done} of {run.shards} shards"
    assert calls[0] not in pg_others()  # the first shard's connection is gone for good
    retried = _retries(trace)
    assert any("compute_shard_task" in line and "terminat" in line for line in retried), retried
    users, placements = EndUser.objects.count(), len(personalized_placements())
    assert run.shards == run.shards_done == len(run.completed_shards) > 1
    assert run.lists_written == users * placements  # each shard counted once
    written = RecommendationSet.objects.filter(model_version=run.model_version)
    assert written.count() == users * placements
    assert not written.filter(computed_at__lt=run.started_at).exists()


def test_a_dropped_connection_while_a_recommendation_run_closes_does_not_leave_it_running(
    on_postgres, trained, monkeypatch, celery_worker_on_redis
):
    calls = _drop_own_connection_first(
        monkeypatch, recommendation_tasks, "recommendation_run_finish"
    )

    recommendation_tasks.recommendations_compute_all_task.delay(shard_users=100)
    done = wait_for(_run_done, timeout=20)

    run = RecommendationRun.objects.get()
    assert calls, "the run never reached its finish"
    assert run.shards_done == run.shards
    assert done, f"every shard done, yet the run stayed {run.status}"


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def wsgi_server():
    """The project behind a real single-threaded WSGI server: one thread serves every
    request, keeping its database connection between them (CONN_MAX_AGE), as a web server's
    worker thread does."""
    server = make_server("127.0.0.1", 0, WSGIHandler(), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_the_events_api_reconnects_after_its_connection_was_dropped(on_postgres, wsgi_server):
    EndUserFactory(external_id="u1")
    for n in range(1, 4):
        ItemFactory(external_id=f"i{n}")
    _, key = api_key_create(name="backend", kind="secret")

    def post(event_id: str, item: str) -> requests.Response:
        return requests.post(
            f"{wsgi_server}/api/v1/events/",
            json=[{"user_id": "u1", "item_id": item, "event_type": "view", "event_id": event_id}],
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )

    mine = pg_backend_pid()
    first = post("e1", "i1")
    assert first.status_code == 200, first.text
    servers_connection = pg_others(spare={mine})
    assert len(servers_connection) == 1  # kept between requests

    assert pg_terminate(spare={mine}) == list(servers_connection)
    second, third = post("e2", "i2"), post("e3", "i3")

    assert (second.status_code, third.status_code) == (200, 200), second.text
    assert set(Interaction.objects.values_list("event_id", flat=True)) == {"e1", "e2", "e3"}
    reconnected = pg_others(spare={mine})
    assert len(reconnected) == 1 and reconnected != servers_connection
