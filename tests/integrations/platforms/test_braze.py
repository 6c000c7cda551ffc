"""The Braze adapter against a loopback server that enforces /users/track's shape."""

import json

import pytest
from werkzeug import Request, Response

from integrations.platforms import adapter
from integrations.platforms.braze import BrazeAdapter, connected_content

from .conftest import NOW, make_message

API_KEY = "braze-rest-key"
PATH = "/users/track"


class Workspace:
    """Answers like Braze: 400/401 for a bad request, 201 with minor errors by index for
    attribute objects it refuses (here: external ids listed in `refuse`)."""

    def __init__(self, refuse: set[str] | None = None) -> None:
        self.refuse = refuse or set()

    def __call__(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {API_KEY}":
            return Response(json.dumps({"message": "Invalid API key"}), status=401)
        attributes = json.loads(request.get_data()).get("attributes", [])
        if not 1 <= len(attributes) <= 75:
            return Response(json.dumps({"message": f"{len(attributes)} attributes"}), 400)
        errors = [
            {"type": "'external_id' is invalid", "input_array": "attributes", "index": i}
            for i, a in enumerate(attributes)
            if not a.get("external_id") or a["external_id"] in self.refuse
        ]
        body = {"message": "success", "attributes_processed": len(attributes) - len(errors)}
        if errors:
            body["errors"] = errors
        return Response(json.dumps(body), status=201, content_type="application/json")


@pytest.fixture
def braze(httpserver, retry) -> BrazeAdapter:
    return BrazeAdapter(api_key=API_KEY, base_url=httpserver.url_for("/"), retry=retry)


def bodies(httpserver) -> list[dict]:
    return [json.loads(request.get_data()) for request, _ in httpserver.log]


def test_429_with_rate_limit_reset_then_201(httpserver, braze, sleeps):
    httpserver.expect_oneshot_request(PATH, method="POST").respond_with_response(
        Response(status=429, headers={"X-RateLimit-Reset": str(int(NOW + 2))})
    )
    httpserver.expect_request(PATH, method="POST").respond_with_handler(Workspace())

    results = braze.send([make_message(1), make_message(2)])

    assert [r.status for r in results] == ["sent", "sent"]
    assert sleeps == [2.0] and len(httpserver.log) == 2
    assert bodies(httpserver)[1]["attributes"][0] == {
        "external_id": "u1",
        "recsite_block": {
            "subject": "Picks for user 1",
            "html": "<p>Hello 1</p>",
            "text": "Hello 1",
            "delivery_id": "d1",
        },
    }


def test_429_with_retry_after(httpserver, braze, sleeps):
    httpserver.expect_oneshot_request(PATH).respond_with_response(
        Response(status=429, headers={"Retry-After": "5"})
    )
    httpserver.expect_request(PATH).respond_with_handler(Workspace())
    assert braze.send([make_message(1)])[0].status == "sent"
    assert sleeps == [5.0]


def test_batches_hold_at_most_75_attributes(httpserver, braze):
    httpserver.expect_request(PATH).respond_with_handler(Workspace())
    results = braze.send([make_message(n) for n in range(151)])
    assert {r.status for r in results} == {"sent"} and len(results) == 151
    assert [len(b["attributes"]) for b in bodies(httpserver)] == [75, 75, 1]


def test_minor_errors_fail_only_their_recipients(httpserver, braze):
    httpserver.expect_request(PATH).respond_with_handler(Workspace(refuse={"u2"}))
    messages = [make_message(1), make_message(2), make_message(3, recipient_id="")]
    results = braze.send(messages)
    assert [r.status for r in results] == ["sent", "failed", "failed"]
    assert results[1].error == "braze: 'external_id' is invalid"


def test_a_wrong_key_fails_without_retrying(httpserver, retry, sleeps):
    httpserver.expect_request(PATH).respond_with_handler(Workspace())
    wrong = adapter(
        {"name": "braze", "api_key": "nope", "base_url": httpserver.url_for("/")}, retry=retry
    )
    (result,) = wrong.send([make_message(1)])
    assert result.status == "failed" and "HTTP 401" in result.error
    assert sleeps == []


def test_connected_content_is_one_users_block():
    assert connected_content(make_message(7)) == {
        "recipient_id": "u7",
        "subject": "Picks for user 7",
        "html": "<p>Hello 7</p>",
        "text": "Hello 7",
        "delivery_id": "d7",
        "merge": {"first_name": "N7"},
    }
    json.dumps(connected_content(make_message(7)))
