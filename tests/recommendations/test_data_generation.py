"""On the embedded defaults the cache lives in each process: a recompute, a training or a rule
change made by another process must still reach a running server's cached lists."""

import pytest
from django.core.management import call_command
from django.test import override_settings
from rest_framework.test import APIClient

from recommendations.models import (
    Item,
    Placement,
    RecommendationRun,
    RecommendationSet,
    Rule,
    RuleCondition,
)
from recommendations.services.api_keys import api_key_create
from recsite import data_generation

pytestmark = pytest.mark.django_db

# The embedded default, whatever this run's settings: a cache of this process only.
PROCESS_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "KEY_FUNCTION": "recsite.data_generation.generation_key",
        "LOCATION": "data-generation-test",
    }
}
URL = "/api/v1/recommendations/?user=user-00007&placement=for-you"


@pytest.fixture
def process_cache():
    with override_settings(CACHES=PROCESS_CACHE):
        data_generation.data_generation_forget()
        yield
    data_generation.data_generation_forget()


@pytest.fixture
def server(trained, process_cache, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("recommend", "--all", "-v0")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(name='b', kind='secret')[1]}")
    return client


def served_ids(server) -> list[str]:
    return [entry["id"] for entry in server.get(URL).json()["items"]]


def a_second_later(monkeypatch):
    """What the server sees once its stamp is older than SECONDS."""
    clock = data_generation.time.monotonic() + data_generation.SECONDS + 0.1
    monkeypatch.setattr(data_generation.time, "monotonic", lambda: clock)


def test_a_recompute_by_another_process_reaches_the_servers_cached_lists(server, monkeypatch):
    before = served_ids(server)  # now cached in this process
    # Another process rewrites the list and records its run; this one is not told.
    replacement = [i for i in Item.objects.values_list("external_id", flat=True) if i not in before]
    stored = RecommendationSet.objects.get(
        user__external_id="user-00007", placement__slug="for-you"
    )
    stored.items = [
        {**stored.items[0], "item_id": item_id, "score": 1.0 - n / 100}
        for n, item_id in enumerate(replacement[: len(stored.items)])
    ]
    stored.save()
    RecommendationRun.objects.create(
        model_version=RecommendationRun.objects.latest("pk").model_version, status="done"
    )

    assert served_ids(server) == before  # within the second: the cached list

    a_second_later(monkeypatch)
    after = served_ids(server)
    assert after and not set(after) & set(before)


def test_a_recompute_in_this_process_is_served_at_once(server, django_capture_on_commit_callbacks):
    before = served_ids(server)
    excluded = Item.objects.get(external_id=before[0])
    rule = Rule.objects.create(
        placement=Placement.objects.get(slug="for-you"), name="no", kind="exclude"
    )
    RuleCondition.objects.create(
        rule=rule, field="item_id", operator="equals", value=excluded.external_id
    )
    with django_capture_on_commit_callbacks(execute=True):
        call_command("recommend", "--all", "-v0")

    assert excluded.external_id not in served_ids(server)
