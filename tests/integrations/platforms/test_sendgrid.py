"""The SendGrid adapter against a loopback server that enforces v3 Mail Send's shape."""

import json

import pytest
from werkzeug import Request, Response

from integrations.platforms import adapter
from integrations.platforms.sendgrid import SendGridAdapter

from .conftest import make_message

API_KEY = "SG.test-key"


def mail_send_errors(request: Request) -> list[str]:
    """What SendGrid would refuse with a 400 or 401."""
    errors = []
    if request.headers.get("Authorization") != f"Bearer {API_KEY}":
        errors.append("auth")
    body = json.loads(request.get_data())
    personalizations = body.get("personalizations", [])
    if not 1 <= len(personalizations) <= 1000:
        errors.append(f"{len(personalizations)} personalizations")
    if any(len(p.get("to", [])) != 1 for p in personalizations):
        errors.append("one recipient per personalization")
    if not body.get("from", {}).get("email"):
        errors.append("from")
    types = [part["type"] for part in body.get("content", [])]
    if not body.get("template_id") and types != ["text/plain", "text/html"]:
        errors.append(f"content types {types}")
    return errors


def accept(request: Request) -> Response:
    errors = mail_send_errors(request)
    if errors:
        return Response(json.dumps({"errors": errors}), status=400)
    return Response(status=202, headers={"X-Message-Id": "msg-abc"})


@pytest.fixture
def sendgrid(httpserver, retry) -> SendGridAdapter:
    return SendGridAdapter(
        api_key=API_KEY,
        from_email="news@example.com",
        base_url=httpserver.url_for("/"),
        retry=retry,
        template_id="d-template",
    )


def bodies(httpserver) -> list[dict]:
    return [json.loads(request.get_data()) for request, _ in httpserver.log]


def test_429_with_retry_after_then_202(httpserver, sendgrid, sleeps):
    httpserver.expect_oneshot_request("/v3/mail/send", method="POST").respond_with_response(
        Response(status=429, headers={"Retry-After": "7"})
    )
    httpserver.expect_request("/v3/mail/send", method="POST").respond_with_handler(accept)

    results = sendgrid.send([make_message(1), make_message(2)])

    assert [(r.status, r.message_id) for r in results] == [("sent", "msg-abc")] * 2
    assert sleeps == [7.0], "waited exactly what Retry-After asked"
    assert len(httpserver.log) == 2
    (p1, _) = bodies(httpserver)[1]["personalizations"]
    assert p1["to"] == [{"email": "user1@example.com"}]
    assert p1["custom_args"] == {"recipient_id": "u1", "delivery_id": "d1"}
    assert p1["headers"]["List-Unsubscribe"] == "<https://example.com/u/1>"
    assert p1["dynamic_template_data"] == {"subject": "Picks for user 1", "first_name": "N1"}


def test_batches_hold_at_most_1000_personalizations(httpserver, sendgrid):
    httpserver.expect_request("/v3/mail/send").respond_with_handler(accept)
    results = sendgrid.send([make_message(n) for n in range(2001)])
    assert {r.status for r in results} == {"sent"}
    assert [len(b["personalizations"]) for b in bodies(httpserver)] == [1000, 1000, 1]


def test_without_a_template_each_body_is_its_own_request(httpserver, retry):
    httpserver.expect_request("/v3/mail/send").respond_with_handler(accept)
    shared = {"html": "<p>Same</p>", "text": "Same"}
    messages = [make_message(1, **shared), make_message(2), make_message(3, **shared)]
    sendgrid = adapter(
        {"name": "sendgrid", "api_key": API_KEY, "from_email": "news@example.com"},
        base_url=httpserver.url_for("/"),
        retry=retry,
    )
    results = sendgrid.send(messages)
    assert [r.recipient_id for r in results] == ["u1", "u2", "u3"]
    assert {r.status for r in results} == {"sent"}
    sent = [[p["to"][0]["email"] for p in b["personalizations"]] for b in bodies(httpserver)]
    assert sent == [["user1@example.com", "user3@example.com"], ["user2@example.com"]]
    assert bodies(httpserver)[0]["content"][1] == {"type": "text/html", "value": "<p>Same</p>"}


def test_a_refused_request_fails_without_retrying(httpserver, retry, sleeps):
    httpserver.expect_request("/v3/mail/send").respond_with_handler(accept)
    wrong_key = SendGridAdapter(
        api_key="nope",
        from_email="news@example.com",
        base_url=httpserver.url_for("/"),
        retry=retry,
    )
    results = wrong_key.send([make_message(1)])
    assert results[0].status == "failed"
    assert "HTTP 400" in results[0].error and "auth" in results[0].error
    assert sleeps == [] and len(httpserver.log) == 1


def test_5xx_until_attempts_run_out_is_retryable(httpserver, sendgrid, sleeps):
    httpserver.expect_request("/v3/mail/send").respond_with_data("upstream down", status=503)
    results = sendgrid.send([make_message(1), make_message(2)])
    assert {r.status for r in results} == {"retryable"}
    assert results[0].error == "sendgrid: HTTP 503: upstream down"
    assert len(httpserver.log) == 4, "max_attempts"
    assert sleeps == [0.5, 1.0, 2.0], "jittered exponential backoff"
