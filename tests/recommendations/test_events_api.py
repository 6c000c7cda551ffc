import json

import pytest
from rest_framework.test import APIClient

from recommendations.models import EndUser, Interaction
from recommendations.services.api_keys import api_key_create
from tests.factories import EndUserFactory, ItemFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/events/"


def _client_with_key(kind: str) -> APIClient:
    _, raw_key = api_key_create(name=f"{kind} key", kind=kind)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


@pytest.fixture
def client():
    return _client_with_key("secret")


@pytest.fixture
def item():
    return ItemFactory(external_id="i1")


def _event(**overrides) -> dict:
    event = {
        "user_id": "u1",
        "item_id": "i1",
        "event_type": "view",
        "event_id": "e1",
        "timestamp": 1700000000,
    }
    event.update(overrides)
    return event


def test_replayed_events_are_counted_as_duplicates_and_stored_once(client, item):
    first = client.post(URL, [_event()], format="json")
    second = client.post(URL, [_event()], format="json")
    assert first.status_code == 200, first.json()
    assert first.json()["accepted"] == 1
    assert second.json() == {"accepted": 0, "duplicates": 1, "rejected": 0, "errors": []}
    assert Interaction.objects.count() == 1


def test_unknown_user_becomes_an_anonymous_profile(client, item):
    client.post(URL, [_event(user_id="visitor-7")], format="json")
    assert EndUser.objects.get(external_id="visitor-7").is_anonymous


def test_known_user_is_not_duplicated(client, item):
    EndUserFactory(external_id="u1")
    client.post(URL, [_event()], format="json")
    assert EndUser.objects.filter(external_id="u1").count() == 1
    assert not EndUser.objects.get(external_id="u1").is_anonymous


def test_events_without_id_are_idempotent_by_content(client, item):
    event = _event()
    del event["event_id"]
    client.post(URL, [event], format="json")
    response = client.post(URL, [event], format="json")
    assert response.json()["duplicates"] == 1
    assert Interaction.objects.count() == 1


def test_same_event_id_twice_in_one_batch_is_one_event(client, item):
    response = client.post(URL, [_event(), _event()], format="json")
    assert response.json()["accepted"] == 1
    assert response.json()["duplicates"] == 1


def test_envelope_with_events_key_is_accepted(client, item):
    response = client.post(URL, {"events": [_event()]}, format="json")
    assert response.status_code == 200


def test_value_timestamp_and_context_are_stored(client, item):
    client.post(
        URL,
        [
            _event(
                event_type="watch",
                event_value=0.5,
                timestamp="2026-01-02T03:04:05Z",
                context={"page": "home"},
            )
        ],
        format="json",
    )
    stored = Interaction.objects.get()
    assert stored.event_value == 0.5
    assert stored.timestamp.isoformat() == "2026-01-02T03:04:05+00:00"
    assert stored.context == {"page": "home"}
    assert stored.event_type.name == "watch"


@pytest.mark.parametrize(
    ("bad_event", "field", "fragment"),
    [
        ({"user_id": ""}, "user_id", "required"),
        ({"user_id": None}, "user_id", "string or an integer"),
        ({"item_id": "nope"}, "item_id", "unknown item 'nope'"),
        ({"event_type": "teleport"}, "event_type", "unknown event type 'teleport'"),
        ({"event_value": "lots"}, "event_value", "not a number"),
        ({"timestamp": "yesterday-ish"}, "timestamp", "unparsable timestamp"),
        ({"timestamp": 99999999999999}, "timestamp", "out of range"),
        ({"timestamp": 4102444800}, "timestamp", "in the future"),
        ({"context": [1, 2]}, "context", "JSON object"),
        ({"userId": "u1"}, "userId", "unknown field"),
        ({"event_id": "x" * 300}, "event_id", "longer than 255"),
    ],
)
def test_invalid_event_is_rejected_with_its_field_and_the_rest_kept(
    client, item, bad_event, field, fragment
):
    bad = _event(event_id="bad") | bad_event
    response = client.post(URL, [_event(event_id="ok"), bad], format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["accepted"] == 1 and body["rejected"] == 1
    [error] = body["errors"]
    assert error["index"] == 1
    assert error["field"] == field
    assert fragment in error["message"]
    assert list(Interaction.objects.values_list("event_id", flat=True)) == ["ok"]


def test_event_that_is_not_an_object_is_rejected(client, item):
    response = client.post(URL, ["not an event"], format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["index"] == 0


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"user_id": "u1"}', "JSON array"),
        (b"[]", "empty"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
def test_malformed_body_is_a_400_with_a_message(client, body, fragment):
    response = client.generic("POST", URL, body, content_type="application/json")
    assert response.status_code == 400
    assert fragment in response.json()["message"]
    assert Interaction.objects.count() == 0


def test_too_many_events_is_a_413(client, item, settings):
    settings.EVENTS_MAX_BATCH = 3
    response = client.post(URL, [_event(event_id=str(n)) for n in range(4)], format="json")
    assert response.status_code == 413
    assert "limit is 3" in response.json()["message"]
    assert Interaction.objects.count() == 0


def test_too_large_body_is_a_413(client, item, settings):
    settings.EVENTS_MAX_BODY_BYTES = 200
    events = [_event(event_id=str(n), context={"pad": "x" * 100}) for n in range(3)]
    response = client.generic("POST", URL, json.dumps(events), content_type="application/json")
    assert response.status_code == 413
    assert "limit is 200" in response.json()["message"]
    assert Interaction.objects.count() == 0


def test_missing_key_is_a_401(item):
    response = APIClient().post(URL, [_event()], format="json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


def test_wrong_key_is_a_401(item):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer rs_sk_not-a-real-key")
    assert client.post(URL, [_event()], format="json").status_code == 401


def test_revoked_key_is_a_401(item):
    api_key, raw_key = api_key_create(name="old", kind="secret")
    api_key.is_active = False
    api_key.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    assert client.post(URL, [_event()], format="json").status_code == 401


def test_public_key_events_are_the_widgets_and_only_from_its_sites(item):
    client = _client_with_key("public")

    elsewhere = client.post(URL, [_event()], format="json", HTTP_ORIGIN="https://evil.example")
    assert elsewhere.status_code == 403 and Interaction.objects.count() == 0

    response = client.post(URL, [_event()], format="json")
    assert response.status_code == 200
    assert Interaction.objects.get().source == Interaction.Source.WIDGET
