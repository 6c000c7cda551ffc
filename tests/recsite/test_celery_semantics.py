"""Each task's acknowledgement and time limit, and the broker's visibility timeout above them,
proven on a real worker against Redis with short values."""

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from django.conf import settings

from recsite.celery import app as celery_app
from tests.conftest import require_redis

ROOT = Path(__file__).resolve().parents[2]
PROJECT_PACKAGES = ("recommendations.", "bulletins.")

# A second delivery of these would do their work twice: a new run, a new model version.
ACKNOWLEDGED_ON_RECEIPT = {
    "recommendations.tasks.model_train_task",
    "recommendations.tasks.recommendations_compute_all_task",
    "recommendations.tasks.recommendation_runs_recover_task",
    "recommendations.tasks.personalize_start_task",
    "bulletins.tasks.bulletin_send_task",
    "bulletins.tasks.bulletin_scheduled_send_task",
    "bulletins.tasks.bulletin_run_resume_task",
    "bulletins.tasks.bulletin_runs_recover_task",
}


def project_tasks():
    celery_app.loader.import_default_modules()
    return {
        name: task for name, task in celery_app.tasks.items() if name.startswith(PROJECT_PACKAGES)
    }


def test_every_task_has_limits_below_the_brokers_visibility_timeout():
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    tasks = project_tasks()
    assert len(tasks) >= 15
    for name, task in tasks.items():
        assert task.time_limit and task.soft_time_limit, name
        assert task.soft_time_limit < task.time_limit <= settings.CELERY_TASK_TIME_LIMIT_MAX, name
        assert task.time_limit < visibility, name
    assert settings.CELERY_TASK_TIME_LIMIT < visibility


def test_only_tasks_a_second_delivery_cannot_harm_acknowledge_late():
    assert celery_app.conf.task_acks_late is False
    for name, task in project_tasks().items():
        assert task.acks_late is (name not in ACKNOWLEDGED_ON_RECEIPT), name


@pytest.mark.slow
def test_a_visibility_timeout_not_above_the_longest_limit_stops_the_start():
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env | {"CELERY_BROKER_VISIBILITY_TIMEOUT": "3600"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "CELERY_BROKER_VISIBILITY_TIMEOUT (3600 s) must be above" in result.stderr


def _deliveries(visibility_timeout: float, runs_for: float) -> int:
    """How many times a late-acknowledged task that runs for `runs_for` seconds is delivered,
    on a real worker and Redis restoring unacknowledged messages every second."""
    redis_url = require_redis()
    app = Celery(f"visibility-{uuid.uuid4().hex[:8]}", broker=redis_url, backend=None)
    queue = f"test-visibility-{uuid.uuid4().hex}"
    app.conf.update(
        task_default_queue=queue,
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={
            "visibility_timeout": visibility_timeout,
            "unacked_restore_interval": 1,
            "unacked_restore_throttle": 1,
        },
    )
    deliveries = []
    lock = threading.Lock()
    first_started = threading.Event()

    @app.task(name=f"slow-task-{uuid.uuid4().hex}", time_limit=10, soft_time_limit=9)
    def slow_task(key):
        with lock:
            deliveries.append(key)
            first = len(deliveries) == 1
        first_started.set()
        if first:  # a second copy only counts; it leaves nothing running at the end
            time.sleep(runs_for)

    with start_worker(
        app, pool="threads", concurrency=2, perform_ping_check=False, loglevel="WARNING"
    ):
        slow_task.delay("once")
        assert first_started.wait(60), "the worker never started the task"
        time.sleep(runs_for + 4)  # long enough for a restore to be noticed
    return len(deliveries)


@pytest.mark.services
@pytest.mark.slow
def test_a_task_running_past_the_visibility_timeout_is_delivered_twice():
    # The hazard the settings guard against, shown with short values: this test would catch a
    # worker setup where redelivery never happens, which would make the next one meaningless.
    assert _deliveries(visibility_timeout=1, runs_for=4) >= 2


@pytest.mark.services
@pytest.mark.slow
def test_a_task_within_its_limit_below_the_visibility_timeout_is_delivered_once():
    assert _deliveries(visibility_timeout=6, runs_for=4) == 1
