"""Shared fixtures. Services (PostgreSQL, Redis) are used when DATABASE_URL / REDIS_URL are set;
tests that need one skip without it, and REQUIRE_SERVICES=1 turns every skip into a failure."""

import os
import socket
import uuid

import pytest
from aiosmtpd.controller import Controller
from django.conf import settings

from recsite.celery import app as celery_app

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def require_redis() -> str:
    """The Redis URL, or skip (fail under REQUIRE_SERVICES=1) when there is none."""
    if not settings.REDIS_URL:
        pytest.skip("needs Redis: set REDIS_URL")
    return settings.REDIS_URL


def require_postgres() -> None:
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("needs PostgreSQL: set DATABASE_URL=postgres://...")


# Tiers by folder (hostile: property tests and API fuzzing); other slow tests carry
# `@pytest.mark.slow` themselves.
TIER_FOLDERS = {"browser": "browser", "faults": "faults", "hostile": "slow"}
FAULT_MODULES = {"test_crash.py"}  # real workers killed mid-run


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = item.path
        folder = path.parent.name
        if folder in TIER_FOLDERS:
            item.add_marker(getattr(pytest.mark, TIER_FOLDERS[folder]))
        if path.name in FAULT_MODULES:
            item.add_marker(pytest.mark.faults)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    # An expected failure reports as skipped too (with `wasxfail`): that one stays as it is.
    if REQUIRE_SERVICES and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under REQUIRE_SERVICES=1: {reason}"


@pytest.fixture(autouse=True)
def _eager_celery_by_default():
    """Unit tests run tasks in-process; the tests that prove fan-out start a real worker."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def _defaults_after_flush(request):
    """Transactional tests empty the tables when they end, rows migrations made included;
    the next one gets the default event types and placement back."""
    if "transactional_db" in request.fixturenames or "live_server" in request.fixturenames:
        from recommendations.defaults import defaults_ensure

        request.getfixturevalue("transactional_db")
        defaults_ensure()


@pytest.fixture(autouse=True)
def _clean_cache():
    from django.core.cache import cache

    from recsite.local_cache import local_caches_clear

    yield
    cache.clear()
    local_caches_clear()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def celery_worker_on_redis(transactional_db):
    """A real Celery worker thread consuming from Redis, for tests that must not run eagerly.

    It listens on a queue of its own, so a worker of another test run sharing the Redis
    database never takes this run's tasks.
    """
    from celery.contrib.testing.worker import start_worker

    require_redis()
    queue = f"test-{uuid.uuid4().hex}"
    previous_queue = celery_app.conf.task_default_queue
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_default_queue = queue
    try:
        with start_worker(
            celery_app,
            pool="threads",
            concurrency=2,
            queues=[queue],
            perform_ping_check=False,
            loglevel="WARNING",
            shutdown_timeout=30,
        ) as worker:
            yield worker
    finally:
        celery_app.conf.task_default_queue = previous_queue


# The planted publisher's rows as the real import path first stored them in this process,
# ready for the database; later tests insert them again (a twentieth of the time) instead of
# importing the same CSVs again.
_planted_rows: dict = {}
PLANTED_MODELS = ("EndUser", "Item", "Interaction")


@pytest.fixture
def planted_catalogue(tmp_path, settings):
    """A small synthetic publisher, imported through the real path, with its planted tastes."""
    from recommendations.defaults import defaults_ensure
    from recommendations.models import EndUser, Interaction, Item
    from recommendations.services.demo import demo_data_load
    from recommendations.synthetic import generate

    settings.VAR_DIR = tmp_path
    settings.ARTIFACT_ROOT = str(tmp_path / "artifacts")
    empty = not (EndUser.objects.exists() or Item.objects.exists() or Interaction.objects.exists())
    if not (_planted_rows and empty):
        data = demo_data_load(n_users=300, n_items=120, seed=3, directory=tmp_path / "csv").data
        if empty:
            _planted_rows_keep()
        return data
    defaults_ensure()
    _planted_rows_restore()
    return generate(n_users=300, n_items=120, seed=3)


def _planted_rows_keep() -> None:
    from django.apps import apps
    from django.db import connection

    for name in PLANTED_MODELS:
        model = apps.get_model("recommendations", name)
        fields = model._meta.concrete_fields
        rows = model.objects.order_by("pk").values_list(*(f.attname for f in fields))
        prepared = [
            [f.get_db_prep_save(value, connection) for f, value in zip(fields, row, strict=True)]
            for row in rows
        ]
        stamped = [
            (index, field)
            for index, field in enumerate(fields)
            if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
        ]
        _planted_rows[name] = (model, [f.column for f in fields], prepared, stamped)
    # Event types are matched by name: a flushed database makes them again with new keys.
    model, columns, prepared, _ = _planted_rows["Interaction"]
    names = dict(apps.get_model("recommendations", "EventType").objects.values_list("pk", "name"))
    position = columns.index("event_type_id")
    for row in prepared:
        row[position] = names[row[position]]


def _planted_rows_restore() -> None:
    from django.core.management.color import no_style
    from django.db import connection
    from django.utils import timezone

    from recommendations.models import EventType

    # As the import would: event types by name, and `received_at`/`updated_at` stamped now
    # (the compiled rules and the batch's "since the fit" both read these).
    event_types = dict(EventType.objects.values_list("name", "pk"))
    now = timezone.now()
    rows = {}
    for name in PLANTED_MODELS:
        _, columns, prepared, stamped = _planted_rows[name]
        stamps = {i: field.get_db_prep_save(now, connection) for i, field in stamped}
        event_type = columns.index("event_type_id") if name == "Interaction" else None
        rows[name] = [
            [
                stamps[i] if i in stamps else event_types[v] if i == event_type else v
                for i, v in enumerate(row)
            ]
            for row in prepared
        ]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for name in PLANTED_MODELS:
            model, columns, _, _ = _planted_rows[name]
            table = f"{quote(model._meta.db_table)} ({', '.join(map(quote, columns))})"
            if connection.vendor == "postgresql":
                with cursor.cursor.copy(f"COPY {table} FROM STDIN") as copy:
                    for row in rows[name]:
                        copy.write_row(row)
            else:
                cursor.executemany(
                    f"INSERT INTO {table} VALUES ({', '.join(['%s'] * len(columns))})",
                    rows[name],
                )
        # Rows came with their keys: move PostgreSQL's sequences past them.
        models = [_planted_rows[name][0] for name in PLANTED_MODELS]
        for statement in connection.ops.sequence_reset_sql(no_style(), models):
            cursor.execute(statement)


@pytest.fixture
def trained(planted_catalogue):
    """The planted catalogue with an active model, and a second personalized placement."""
    from recommendations.models import Placement
    from recommendations.services.training import model_version_train

    Placement.objects.create(slug="newsletter", name="Newsletter", count=4)
    model_version_train()
    return planted_catalogue


S3_BUCKET = "recsite-test"


@pytest.fixture(scope="session")
def moto_endpoint():
    """moto's S3 server on loopback, over real HTTP."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(moto_endpoint, monkeypatch, settings):
    """A fresh bucket on the moto server, with dummy credentials in the environment."""
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    settings.AWS_ENDPOINT_URL = moto_endpoint
    settings.AWS_REGION = "us-east-1"
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=S3_BUCKET)
    yield client
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=S3_BUCKET):
        for entry in page.get("Contents", []):
            client.delete_object(Bucket=S3_BUCKET, Key=entry["Key"])
    client.delete_bucket(Bucket=S3_BUCKET)


class Inbox:
    """The mailbox of a real SMTP server (aiosmtpd on loopback). Keeps what arrives; refuses
    addresses starting with `hard` (550) or `soft` (450)."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], bytes]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("hard"):
            return "550 5.1.1 no such user"
        if address.startswith("soft"):
            return "450 4.2.1 mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append((list(envelope.rcpt_tos), envelope.original_content))
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server(settings):
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    yield inbox
    controller.stop()
