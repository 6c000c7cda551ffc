import pytest
from rest_framework.test import APIClient

from recommendations.models import EndUser, Interaction
from recommendations.services.api_keys import api_key_create
from tests.factories import ItemFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_with_secret_key():
    _, raw_key = api_key_create(name="backend", kind="secret")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


def test_events_are_stored_once_and_unknown_users_become_anonymous(client_with_secret_key):
    ItemFactory(external_id="i1")
    events = [{"user_id": "u1", "item_id": "i1", "event_type": "view", "event_id": "e1",
               "timestamp": 1700000000}]
    first = client_with_secret_key.post("/api/v1/events/", events, format="json")
    second = client_with_secret_key.post("/api/v1/events/", events, format="json")
    assert first.status_code == 200, first.json()
    assert first.json()["accepted"] == 1
    assert second.json() == {"accepted": 0, "duplicates": 1, "rejected": 0, "errors": []}
    assert Interaction.objects.count() == 1
    assert EndUser.objects.get(external_id="u1").is_anonymous
