"""Fault injection on real services: what the tests in tests/faults share.

- `own_redis`: a redis-server of the test's own, on a free port, that the test stops and
  starts. The shared Redis other tests use is never stopped; `redis_everywhere` points the
  cache, the broker and the result backend at the test's own server.
- `pg_terminate`: drops the connections of the workers and servers a test started, on the
  test database only (pytest-django's `test_<name>`, made for this session).
- `platform`: a marketing platform on loopback (a webhook receiver on pytest-httpserver) that
  honours idempotency keys, answers from a script (500s, 429s with Retry-After, then 200s),
  refuses chosen recipients and can inject a fault while a batch is in flight.

A worker process killed in the middle of a bulletin run is tests/bulletins/test_crash.py;
its `wait_for` is reused here.
"""

import json
import logging
import shutil
import subprocess
import threading
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import redis
from django.db import connection
from kombu import pools as kombu_pools
from werkzeug import Request, Response

from bulletins.models import Bulletin, BulletinBlock, PlatformConnection
from recommendations.models import EndUser, Placement
from recsite.celery import app as celery_app
from tests.bulletins.conftest import served  # noqa: F401 (a fixture, reused)
from tests.bulletins.test_crash import wait_for
from tests.conftest import free_port, require_postgres, require_redis
from tests.recommendations.test_personalize_flow import personalize  # noqa: F401 (a fixture)

BATCH = 10
SECRET_ENV = "FAULTS_WEBHOOK_SECRET"

__all__ = ["BATCH", "eligible_users", "logged", "pg_backend_pid", "pg_terminate", "wait_for"]


# -- Redis of the test's own ---------------------------------------------------------------


class RedisServer:
    """A redis-server on a free loopback port, without persistence: a restart comes back
    empty, as a cache-and-broker Redis does after a crash."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        assert wait_for(answers, timeout=10, every=0.05), f"redis-server on {self.port} silent"
        client.close()

    def stop(self) -> None:
        """As a crash: SIGKILL, nothing saved, every client's connection reset."""
        if self.running:
            self.process.kill()
            self.process.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def own_redis(tmp_path) -> Iterator[RedisServer]:
    require_redis()  # a services test: skipped on the embedded defaults like the others
    if shutil.which("redis-server") is None:
        pytest.skip("needs the redis-server binary to start a Redis of the test's own")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def celery_connections_reset() -> None:
    """Forget the app's broker connections and this thread's result backend, so the next
    call uses the broker and backend URLs now configured."""
    if celery_app._pool is not None:
        celery_app._pool.force_close_all()
        celery_app._pool = None
    # kombu keeps producer pools per broker URL in a registry of its own; one left holding
    # the closed pool fails the next test that sends a task ("Acquire on closed pool").
    kombu_pools.reset()
    celery_app.amqp._producer_pool = None
    celery_app._local.__dict__.pop("backend", None)


@pytest.fixture
def redis_everywhere(own_redis, settings, transactional_db) -> Iterator[RedisServer]:
    """The cache, the Celery broker and the result backend on the test's own Redis, as in
    production where one Redis holds all three; tasks go to the broker, not run in-process."""
    settings.CACHES = {
        "default": {
            "BACKEND": "recsite.cache.RedisCache",
            "LOCATION": own_redis.url,
            "KEY_PREFIX": "faults",
        }
    }
    conf = celery_app.conf
    previous = conf.broker_url, conf.result_backend, conf.task_always_eager
    conf.broker_url = conf.result_backend = own_redis.url
    conf.task_always_eager = False
    celery_connections_reset()
    try:
        yield own_redis
    finally:
        conf.broker_url, conf.result_backend, conf.task_always_eager = previous
        celery_connections_reset()


# -- PostgreSQL ------------------------------------------------------------------------------


def pg_backend_pid() -> int:
    """The server process of this thread's database connection."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _pg_connect() -> psycopg.Connection:
    db = connection.settings_dict
    return psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname=db["NAME"],
        autocommit=True,
        application_name="recsite-faults-injector",
    )


def pg_terminate(*, spare: Collection[int] = (), only: Collection[int] | None = None) -> list[int]:
    """Terminate connections to the test database: those in `only`, or else all but `spare`
    (the test's own): those of the workers and servers the test started. Answers their pids.

    Only the test database is touched, whose name pytest-django made for this session, so
    no connection of anyone else is ever terminated."""
    require_postgres()
    with _pg_connect() as conn:
        pids = [pid for pid in _pg_others(conn, spare) if only is None or pid in only]
        for pid in pids:
            conn.execute("SELECT pg_terminate_backend(%s)", [pid])
    return pids


def pg_others(*, spare: Collection[int] = ()) -> set[int]:
    """The pids of the other connections to the test database."""
    with _pg_connect() as conn:
        return set(_pg_others(conn, spare))


def _pg_others(conn: psycopg.Connection, spare: Collection[int]) -> list[int]:
    rows = conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND NOT (pid = ANY(%s))",
        [list(spare)],
    ).fetchall()
    return [pid for (pid,) in rows]


# -- Logs ------------------------------------------------------------------------------------


class _Records(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.DEBUG)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def logged(name: str, level: int = logging.INFO) -> Iterator[list[logging.LogRecord]]:
    """The records of one logger, whatever a Celery worker did to the root logger's
    handlers (it replaces them when it starts, pytest's caplog included)."""
    records: list[logging.LogRecord] = []
    handler = _Records(records)
    logger = logging.getLogger(name)
    previous = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > level:
        logger.setLevel(level)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


# -- A marketing platform on loopback --------------------------------------------------------


class FakePlatform:
    """A webhook receiver that behaves as a platform honouring idempotency keys: a message
    whose key it has delivered already is acknowledged and dropped, never delivered twice.

    - `script`: (status, headers) answers for the next requests, then 200s;
    - `refuse`: email -> how many more times to answer that recipient `retryable` (-1: always);
    - `during(request_number, keys)`: called while a batch is in flight, before the answer,
      to inject a fault at that moment.
    """

    def __init__(self, httpserver) -> None:
        self.url = httpserver.url_for("/hook")
        self.lock = threading.Lock()
        self.requests = 0
        self.script: deque[tuple[int, dict[str, str]]] = deque()
        self.refuse: dict[str, int] = {}
        self.during: Callable[[int, list[str]], None] | None = None
        self.refused: Counter[str] = Counter()  # key -> answered 5xx/429 for its batch
        self.soft_refused: Counter[str] = Counter()  # key -> answered retryable on its own
        self.delivered: Counter[str] = Counter()  # key -> delivered (at most once)
        self.duplicates: Counter[str] = Counter()  # key -> came again once delivered: dropped
        httpserver.expect_request("/hook", method="POST").respond_with_handler(self._handle)

    def _handle(self, request: Request) -> Response:
        messages = json.loads(request.get_data())["messages"]
        keys = [message["idempotency_key"] for message in messages]
        with self.lock:
            self.requests += 1
            number = self.requests
            status, headers = self.script.popleft() if self.script else (200, {})
        if self.during is not None:
            self.during(number, keys)
        if status != 200:
            with self.lock:
                self.refused.update(keys)
            body = "slow down" if status == 429 else "internal error"
            return Response(body, status=status, headers=headers)
        with self.lock:
            results = [self._answer(message) for message in messages]
        return Response(
            json.dumps({"results": results}), status=200, content_type="application/json"
        )

    def _answer(self, message: dict) -> dict:
        key, email = message["idempotency_key"], message["email"]
        left = self.refuse.get(email, 0)
        if left:
            self.refuse[email] = left - 1 if left > 0 else left
            self.soft_refused[key] += 1
            return {
                "recipient_id": message["recipient_id"],
                "status": "retryable",
                "error": "mailbox full, try later",
            }
        if key in self.delivered:
            self.duplicates[key] += 1
        else:
            self.delivered[key] += 1
        return {"recipient_id": message["recipient_id"], "status": "sent", "message_id": key}


@pytest.fixture
def platform(httpserver) -> FakePlatform:
    return FakePlatform(httpserver)


@pytest.fixture
def webhook_bulletin(served, platform, monkeypatch) -> Bulletin:  # noqa: F811 (fixture)
    """A bulletin of one personalized block, sent through the loopback platform in batches
    of BATCH, to the served publisher's users."""
    monkeypatch.setenv(SECRET_ENV, "s3cret")
    bulletin = Bulletin.objects.create(
        slug="faults",
        name="Fault injection",
        subject_template="Your picks",
        platform=PlatformConnection.objects.create(
            name="Loopback webhook",
            kind="webhook",
            options={"url": platform.url, "batch_size": BATCH},
            credential_env=SECRET_ENV,
        ),
    )
    BulletinBlock.objects.create(
        bulletin=bulletin,
        title="For you",
        placement=Placement.objects.get(slug="for-you"),
        count=3,
    )
    return bulletin


def eligible_users():
    """Who a bulletin without segments sends to."""
    return EndUser.objects.filter(is_anonymous=False, email_opt_in=True).exclude(email="")
