"""Shared pieces of the hostile-input tests: Hypothesis settings, a per-example rollback, row
counts and API clients with keys."""

import os
from contextlib import contextmanager

import pytest
from django.apps import apps
from django.db import transaction
from hypothesis import HealthCheck, settings
from rest_framework.test import APIClient

from recommendations.services.api_keys import api_key_create

# Every property test: no deadline (the first example pays for warm caches), no example
# database in the work tree, and the function-scoped `db` fixture shared by all examples on
# purpose (each example runs inside `example_rolled_back`).
HOSTILE = settings(
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)

# HOSTILE_SCALE=10 runs ten times the examples, for a longer hunt than the suite's.
SCALE = float(os.environ.get("HOSTILE_SCALE", "1"))


def hostile(max_examples: int) -> settings:
    """HOSTILE with a bounded number of examples (the suite must stay quick on 2 cores)."""
    return settings(HOSTILE, max_examples=max(1, round(max_examples * SCALE)))


# The tables hostile input could reach. A rejected input must leave each count as it was.
WATCHED_MODELS = (
    "recommendations.EndUser",
    "recommendations.Item",
    "recommendations.EventType",
    "recommendations.Interaction",
    "bulletins.Click",
    "bulletins.Open",
    "bulletins.Unsubscribe",
    "bulletins.Conversion",
)


class _Undo(Exception):
    pass


@contextmanager
def example_rolled_back():
    """Run one Hypothesis example in a savepoint that is always rolled back, so every example
    starts from the same rows (the test's own transaction stays usable on PostgreSQL too,
    even after a database error inside the example)."""
    try:
        with transaction.atomic():
            yield
            raise _Undo
    except _Undo:
        pass


def row_counts() -> dict[str, int]:
    return {label: apps.get_model(label).objects.count() for label in WATCHED_MODELS}


def key_client(kind: str) -> APIClient:
    """An API client carrying a fresh key of `kind` (`secret` or `public`)."""
    _, raw_key = api_key_create(name=f"hostile {kind}", kind=kind)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    client.raw_key = raw_key
    return client


@pytest.fixture
def unthrottled(settings):
    """Public keys are rate limited per key and address; property tests send hundreds of
    requests from one address within a second."""
    settings.API_PUBLIC_RATE = "1000000/min"


@pytest.fixture
def secret_client(db, unthrottled):
    return key_client("secret")


@pytest.fixture
def public_client(db, unthrottled):
    return key_client("public")
