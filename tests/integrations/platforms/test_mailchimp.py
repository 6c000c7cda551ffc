"""The Mailchimp adapter against a loopback server that enforces batch subscribe's shape."""

import base64
import json

import pytest
from werkzeug import Request, Response

from integrations.platforms import adapter
from integrations.platforms.mailchimp import MailchimpAdapter, base_url_for, subscriber_hash

from .conftest import make_message

API_KEY = "0123456789abcdef-us6"
LIST_ID = "a1b2c3"
PATH = f"/3.0/lists/{LIST_ID}"


def batch_errors(request: Request) -> list[str]:
    """What Mailchimp would refuse with a 400 or 401."""
    errors = []
    expected = "Basic " + base64.b64encode(f"anystring:{API_KEY}".encode()).decode()
    if request.headers.get("Authorization") != expected:
        errors.append("auth")
    body = json.loads(request.get_data())
    members = body.get("members", [])
    if not 1 <= len(members) <= 500:
        errors.append(f"{len(members)} members")
    if body.get("update_existing") is not True:
        errors.append("update_existing")
    for member in members:
        if not member.get("email_address") or member.get("status") != "subscribed":
            errors.append("member")
        if any(len(v) > 255 for v in member.get("merge_fields", {}).values()):
            errors.append("merge field too long")
    return errors


class Audience:
    """Answers like Mailchimp: 200 with the refused members in `errors`."""

    def __init__(self, refuse: dict[str, tuple[str, str]] | None = None) -> None:
        self.refuse = refuse or {}

    def __call__(self, request: Request) -> Response:
        errors = batch_errors(request)
        if errors:
            return Response(json.dumps({"title": "Invalid Resource", "errors": errors}), 400)
        members = json.loads(request.get_data())["members"]
        refused = [
            {"email_address": m["email_address"], "error": text, "error_code": code}
            for m in members
            for text, code in [self.refuse.get(m["email_address"], ("", ""))]
            if text
        ]
        body = {
            "new_members": [],
            "updated_members": [],
            "errors": refused,
            "total_created": 0,
            "total_updated": len(members) - len(refused),
            "error_count": len(refused),
        }
        return Response(json.dumps(body), content_type="application/json")


@pytest.fixture
def mailchimp(httpserver, retry) -> MailchimpAdapter:
    return MailchimpAdapter(
        api_key=API_KEY,
        list_id=LIST_ID,
        subject_field="RECSUBJ",
        base_url=httpserver.url_for("/"),
        retry=retry,
    )


def bodies(httpserver) -> list[dict]:
    return [json.loads(request.get_data()) for request, _ in httpserver.log]


def test_429_then_upsert_with_the_block_as_a_merge_field(httpserver, mailchimp, sleeps):
    httpserver.expect_oneshot_request(PATH, method="POST").respond_with_response(
        Response(status=429, headers={"Retry-After": "3"})
    )
    httpserver.expect_request(PATH, method="POST").respond_with_handler(Audience())

    results = mailchimp.send([make_message(1), make_message(2)])

    assert [(r.status, r.message_id) for r in results] == [
        ("sent", subscriber_hash("user1@example.com")),
        ("sent", subscriber_hash("user2@example.com")),
    ]
    assert sleeps == [3.0] and len(httpserver.log) == 2
    first = bodies(httpserver)[1]["members"][0]
    assert first == {
        "email_address": "user1@example.com",
        "status": "subscribed",
        "merge_fields": {"RECS": "<p>Hello 1</p>", "RECSUBJ": "Picks for user 1"},
    }


def test_batches_hold_at_most_500_members(httpserver, mailchimp):
    httpserver.expect_request(PATH).respond_with_handler(Audience())
    results = mailchimp.send([make_message(n) for n in range(1001)])
    assert {r.status for r in results} == {"sent"} and len(results) == 1001
    assert [len(b["members"]) for b in bodies(httpserver)] == [500, 500, 1]


def test_refused_members_are_per_recipient(httpserver, mailchimp):
    httpserver.expect_request(PATH).respond_with_handler(
        Audience(
            {
                "user2@example.com": ("looks fake or invalid", "ERROR_FAKE_EMAIL"),
                "USER3@example.com": ("try again", "ERROR_GENERIC"),
            }
        )
    )
    messages = [make_message(1), make_message(2), make_message(3, email="USER3@example.com")]
    messages.append(make_message(4, html="x" * 256))

    results = mailchimp.send(messages)

    assert [r.status for r in results] == ["sent", "failed", "retryable", "failed"]
    assert results[1].error == "mailchimp: looks fake or invalid (ERROR_FAKE_EMAIL)"
    assert results[2].message_id == subscriber_hash("user3@example.com")
    assert "longer than 255" in results[3].error
    assert [len(b["members"]) for b in bodies(httpserver)] == [3], "the long block stayed home"


def test_a_wrong_key_fails_without_retrying(httpserver, retry, sleeps):
    httpserver.expect_request(PATH).respond_with_handler(Audience())
    wrong = adapter(
        {"name": "mailchimp", "api_key": "nope-us6", "list_id": LIST_ID},
        base_url=httpserver.url_for("/"),
        retry=retry,
    )
    (result,) = wrong.send([make_message(1)])
    assert result.status == "failed" and "HTTP 400" in result.error and "auth" in result.error
    assert sleeps == []


def test_the_data_center_comes_from_the_key():
    assert base_url_for(API_KEY) == "https://us6.api.mailchimp.com"
    with pytest.raises(ValueError, match="data center"):
        base_url_for("nodatacenter")
