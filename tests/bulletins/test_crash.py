"""A real Celery worker process is killed (SIGKILL) in the middle of a bulletin run, while
the platform holds a batch it has received but not yet answered; a second worker resumes the
run. Every user ends with exactly one delivery, sent once as far as the platform is concerned
(the in-doubt batch comes again with the same per-message idempotency keys, which the
platform uses to drop the copies), and nobody is lost.

Needs PostgreSQL and Redis: the worker is another process and must see the test database.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from bulletins.models import Bulletin, BulletinBlock, BulletinRun, Delivery, PlatformConnection
from bulletins.tasks import bulletin_runs_recover_task, bulletin_send_task
from recommendations.models import EndUser, Placement
from recommendations.services.recommending import recommendations_compute_all_in_process
from recommendations.services.training import model_version_train
from recsite.celery import app as celery_app
from tests.conftest import require_postgres, require_redis

pytestmark = pytest.mark.django_db(transaction=True)

BATCH = 10
KILL_ON_BATCH = 3
LEASE_SECONDS = 3
ROOT = Path(__file__).resolve().parents[2]


class Platform(ThreadingHTTPServer):
    """A webhook receiver that de-duplicates by the message's idempotency key, as a platform
    honouring idempotency keys does, and can kill the sender while a batch is in flight."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), PlatformHandler)
        self.lock = threading.Lock()
        self.batches = 0
        self.received: Counter[str] = Counter()
        self.in_doubt: set[str] = set()
        self.victim: subprocess.Popen | None = None
        self.killed = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class PlatformHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        keys = [m["idempotency_key"] for m in json.loads(body)["messages"]]
        server: Platform = self.server
        with server.lock:
            server.batches += 1
            server.received.update(keys)
            kill = server.batches == KILL_ON_BATCH and server.victim is not None
            if kill:
                server.in_doubt.update(keys)
        if kill:
            # The batch has arrived; its sender dies before it hears back.
            server.victim.send_signal(signal.SIGKILL)
            server.victim.wait()
            server.killed.set()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"results": []}')

    def log_message(self, *args) -> None:
        pass


def database_url() -> str:
    db = connection.settings_dict
    return (
        f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )


def start_worker(queue: str, tmp_path: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "BULLETIN_CLAIM_LEASE_SECONDS": str(LEASE_SECONDS),
        "BULLETIN_RETRY_SECONDS": "1",
        "CRASH_TEST_WEBHOOK_SECRET": "s3cret",
        "SECRET_KEY": settings.SECRET_KEY,
        "ARTIFACT_ROOT": settings.ARTIFACT_ROOT,
    }
    log = open(tmp_path / f"worker-{uuid.uuid4().hex[:6]}.log", "w")  # noqa: SIM115
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "recsite",
            "worker",
            "-Q",
            queue,
            "--pool",
            "solo",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


@pytest.fixture
def platform():
    server = Platform()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.fixture
def crash_bulletin(planted_catalogue, platform, monkeypatch):
    monkeypatch.setenv("CRASH_TEST_WEBHOOK_SECRET", "s3cret")
    model_version_train()
    recommendations_compute_all_in_process()
    bulletin = Bulletin.objects.create(
        slug="crash",
        name="Crash test",
        subject_template="Your picks",
        platform=PlatformConnection.objects.create(
            name="Loopback webhook",
            kind="webhook",
            options={"url": platform.url, "batch_size": BATCH},
            credential_env="CRASH_TEST_WEBHOOK_SECRET",
        ),
    )
    BulletinBlock.objects.create(
        bulletin=bulletin,
        title="For you",
        placement=Placement.objects.get(slug="for-you"),
        count=3,
    )
    return bulletin


@pytest.fixture
def worker_queue():
    """Tasks of this test go to a queue of its own, which only its worker processes read."""
    require_postgres()
    require_redis()
    queue = f"crash-{uuid.uuid4().hex}"
    previous = celery_app.conf.task_always_eager, celery_app.conf.task_default_queue
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_default_queue = queue
    try:
        yield queue
    finally:
        celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = previous


def wait_for(condition, timeout: float, every: float = 0.5, action=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if action is not None:
            action()
        time.sleep(every)
    return condition()


def test_worker_killed_mid_run_sends_everyone_exactly_once(
    worker_queue, crash_bulletin, platform, tmp_path
):
    eligible = EndUser.objects.filter(is_anonymous=False, email_opt_in=True).exclude(email="")
    first = start_worker(worker_queue, tmp_path)
    platform.victim = first
    second = None
    try:
        bulletin_send_task.delay(crash_bulletin.pk)
        assert platform.killed.wait(120), "the worker never reached the third batch"
        run = BulletinRun.objects.get(bulletin=crash_bulletin)
        in_doubt = Delivery.objects.filter(run=run, status=Delivery.Status.SENDING)
        assert {str(pk) for pk in in_doubt.values_list("pk", flat=True)} == platform.in_doubt
        assert Delivery.objects.filter(run=run, status=Delivery.Status.PENDING).exists()

        second = start_worker(worker_queue, tmp_path)
        time.sleep(LEASE_SECONDS)
        done = wait_for(
            lambda: BulletinRun.objects.get(pk=run.pk).status == BulletinRun.Status.DONE,
            timeout=120,
            every=2,
            action=lambda: bulletin_runs_recover_task.delay(),
        )
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(30)

    run.refresh_from_db()
    assert done, f"run stayed {run.status}: {run.error}"
    deliveries = Delivery.objects.filter(run=run)
    assert deliveries.count() == eligible.count() == run.sent
    assert set(deliveries.values_list("status", flat=True)) == {Delivery.Status.SENT}
    # No loss: the platform holds every delivery. No duplicate: only the batch in flight when
    # the worker died came twice, with the same keys, and each key counts once.
    keys = {str(pk) for pk in deliveries.values_list("pk", flat=True)}
    assert set(platform.received) == keys
    twice = {key for key, n in platform.received.items() if n > 1}
    assert twice == platform.in_doubt and len(twice) == BATCH
    assert max(platform.received.values()) == 2
    assert set(deliveries.filter(pk__in=twice).values_list("attempts", flat=True)) == {2}
