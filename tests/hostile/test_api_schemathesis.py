"""schemathesis against the OpenAPI schema the app serves at `/api/v1/schema/`.

Every operation of the schema gets requests generated from it (valid and invalid parameters
and bodies), through the real WSGI application, with a secret key and with a public key, on a
database seeded so the endpoints have something to serve (items with events, so trending has
a list; a similar-items placement; a bulletin with a delivery for the Connected Content API).
Some generated cases are pointed at the seeded placement, users and items, so the 200 paths
are exercised, not only the 400s and 404s.

Checks: no 5xx (`not_a_server_error`), every status code documented, every documented
response body conforming to its schema, the documented content type and headers.
"""

import datetime as dt

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import given, note
from hypothesis import strategies as st
from rest_framework.test import APIClient
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bulletins.models import Bulletin, BulletinBlock, BulletinRun, Delivery
from recommendations.models import EndUser, EventType, Interaction, Item, Placement
from recsite.wsgi import application
from tests.hostile.conftest import example_rolled_back, hostile

pytestmark = pytest.mark.django_db

OPERATIONS = [
    ("/api/v1/recommendations/", "GET"),
    ("/api/v1/events/", "POST"),
    ("/api/v1/identify/", "POST"),
    ("/api/v1/bulletins/{slug}/content/{user_id}/", "GET"),
]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
USERS = ("u-0", "u-1", "visitor-9")
ITEMS = tuple(f"i-{n}" for n in range(6))
PLACEMENTS = ("for-you", "popular", "similar", "missing")


@pytest.fixture
def wsgi_inside_the_test_transaction():
    """Django closes the connection after each request it serves through WSGI, which would
    end the test's transaction; its own test client switches that off the same way."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def schema(db, wsgi_inside_the_test_transaction):
    """The schema as the app serves it (loading it runs a request: the CORS middleware reads
    the public keys' origins, so it needs the database)."""
    return schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", application)


def test_the_schema_lists_every_api_operation(schema):
    operations = [result.ok() for result in schema.get_all_operations()]
    assert sorted((op.path, op.method.upper()) for op in operations) == sorted(OPERATIONS)


@pytest.fixture
def seeded(db, unthrottled):
    """Items with recent events (trending has a list), a similar-items placement, and a sent
    email of a bulletin for u-0 (Connected Content has an answer)."""
    users = [EndUser.objects.create(external_id=external_id) for external_id in USERS[:2]]
    items = [
        Item.objects.create(
            external_id=external_id,
            title=f"Item {external_id}",
            url=f"https://shop.example/{external_id}",
            categories=["news"],
        )
        for external_id in ITEMS
    ]
    view = EventType.objects.get(name="view")
    now = timezone.now()
    Interaction.objects.bulk_create(
        Interaction(
            event_id=f"seed-{n}",
            user=users[n % 2],
            item=items[n % len(items)],
            event_type=view,
            timestamp=now - dt.timedelta(hours=n),
        )
        for n in range(24)
    )
    Placement.objects.create(
        slug="popular", name="Popular", strategy=Placement.Strategy.TRENDING, window_days=30
    )
    Placement.objects.create(
        slug="similar", name="Similar", strategy=Placement.Strategy.SIMILAR_ITEMS
    )
    bulletin = Bulletin.objects.create(slug="weekly", name="Weekly", subject_template="Hi")
    BulletinBlock.objects.create(
        bulletin=bulletin,
        position=1,
        title="Picked for you",
        placement=Placement.objects.get(slug="for-you"),
        count=2,
    )
    run = BulletinRun.objects.create(bulletin=bulletin, run_key="seed")
    Delivery.objects.create(
        run=run,
        user=users[0],
        email="u-0@example.com",
        items=[
            {
                "item_id": "i-0",
                "block": 1,
                "position": 1,
                "placement": "for-you",
                "source": "inhouse",
            },
            {
                "item_id": "i-1",
                "block": 1,
                "position": 2,
                "placement": "for-you",
                "source": "inhouse",
            },
        ],
        status=Delivery.Status.SENT,
        sent_at=now - dt.timedelta(hours=1),
    )


def _aimed(case, data) -> None:
    """Point some generated cases at what the database holds, so the 200 paths are tried."""
    if not data.draw(st.booleans(), label="aimed at seeded rows"):
        return
    if case.operation.path == "/api/v1/recommendations/":
        case.query = dict(case.query or {})
        case.query["placement"] = data.draw(st.sampled_from(PLACEMENTS), label="placement")
        case.query["user"] = data.draw(st.sampled_from(USERS), label="user")
        if data.draw(st.booleans(), label="with item"):
            case.query["item"] = data.draw(st.sampled_from(ITEMS), label="item")
        else:
            case.query.pop("item", None)
    elif case.operation.path.startswith("/api/v1/bulletins/"):
        case.path_parameters = {"slug": "weekly", "user_id": data.draw(st.sampled_from(USERS))}
    elif case.operation.path == "/api/v1/events/":
        case.body = [
            {
                "user_id": data.draw(st.sampled_from(USERS)),
                "item_id": data.draw(st.sampled_from(ITEMS)),
                "event_type": data.draw(st.sampled_from(["view", "click", "purchase"])),
            }
            for _ in range(data.draw(st.integers(1, 3)))
        ]
    elif case.operation.path == "/api/v1/identify/":
        case.body = {
            "anonymous_id": data.draw(st.sampled_from(["visitor-9", "anon-1", "u-1"])),
            "user_id": data.draw(st.sampled_from(USERS)),
        }


def _run(schema, operation_key, raw_key: str, data, checks) -> None:
    path, method = operation_key
    operation = schema[path][method]
    case = data.draw(operation.as_strategy(), label="case")
    _aimed(case, data)
    note(f"{case.method} {case.formatted_path} query={case.query} body={case.body!r:.500}")
    with example_rolled_back():
        case.call_and_validate(headers={"Authorization": f"Bearer {raw_key}"}, checks=checks)


def _operation_id(key) -> str:
    return f"{key[1]} {key[0]}"


@pytest.mark.parametrize("operation_key", OPERATIONS, ids=_operation_id)
@pytest.mark.parametrize("key_kind", ["secret", "public"])
@hostile(40)
@given(data=st.data())
def test_no_operation_answers_with_a_server_error(
    operation_key, key_kind, data, schema, seeded, secret_client, public_client
):
    client = secret_client if key_kind == "secret" else public_client
    _run(schema, operation_key, client.raw_key, data, [not_a_server_error])


def _conformance_cases():
    for key_kind in ("secret", "public"):
        for path, method in OPERATIONS:
            yield pytest.param((path, method), key_kind, id=f"{key_kind}-{method} {path}")


@pytest.mark.parametrize(("operation_key", "key_kind"), list(_conformance_cases()))
@hostile(40)
@given(data=st.data())
def test_every_answer_matches_the_schema(
    operation_key, key_kind, data, schema, seeded, secret_client, public_client
):
    client = secret_client if key_kind == "secret" else public_client
    _run(schema, operation_key, client.raw_key, data, CHECKS)


def test_every_operation_documents_the_401_an_unknown_key_gets(schema, seeded):
    """Every operation answers 401 to a wrong key, 403 to a key that may not, and the
    widget-facing ones 429 to a throttled public key: the schema should say so."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer rs_sk_not-a-key")
    undocumented = []
    for path, method in OPERATIONS:
        url = path.format(slug="weekly", user_id="u-0")
        response = client.generic(method, url, "[]", content_type="application/json")
        assert response.status_code == 401
        assert isinstance(response.json()["message"], str)
        documented = schema[path][method].definition.raw["responses"]
        codes = ("401", "403") if "bulletins" in path else ("401", "403", "429")
        undocumented += [f"{method} {path}: {code}" for code in codes if code not in documented]
    assert not undocumented, undocumented
