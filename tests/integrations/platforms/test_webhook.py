"""The signed webhook adapter against a loopback receiver that checks the signature."""

import json

import pytest
from werkzeug import Request, Response

from integrations.platforms.webhook import (
    SIGNATURE_HEADER,
    WebhookAdapter,
    signature_header,
    verify_signature,
)

from .conftest import NOW, make_message

SECRET = "whsec-test"


class Receiver:
    """Checks each request's signature; answers per recipient from `answers`."""

    def __init__(self, answers: dict[str, dict] | None = None) -> None:
        self.answers = answers or {}
        self.batches: list[list[dict]] = []

    def __call__(self, request: Request) -> Response:
        body = request.get_data()
        header = request.headers.get(SIGNATURE_HEADER, "")
        if not verify_signature(SECRET, header, body, now=NOW):
            return Response("bad signature", status=401)
        messages = json.loads(body)["messages"]
        self.batches.append(messages)
        results = [
            {"recipient_id": m["recipient_id"], **self.answers[m["recipient_id"]]}
            for m in messages
            if m["recipient_id"] in self.answers
        ]
        return Response(json.dumps({"results": results}), content_type="application/json")


def webhook(httpserver, retry, secret: str = SECRET, batch_size: int = 2) -> WebhookAdapter:
    return WebhookAdapter(
        url=httpserver.url_for("/hook"), secret=secret, batch_size=batch_size, retry=retry
    )


def test_signed_batches_reach_the_receiver(httpserver, retry):
    receiver = Receiver()
    httpserver.expect_request("/hook", method="POST").respond_with_handler(receiver)

    results = webhook(httpserver, retry).send([make_message(n) for n in range(5)])

    assert {r.status for r in results} == {"sent"}
    assert [len(batch) for batch in receiver.batches] == [2, 2, 1]
    first = receiver.batches[0][0]
    assert first["idempotency_key"] == "d0" and first["merge_data"] == {"first_name": "N0"}
    assert first["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    request, _ = httpserver.log[0]
    assert request.headers["Idempotency-Key"]


def test_a_wrong_secret_is_refused(httpserver, retry):
    httpserver.expect_request("/hook").respond_with_handler(Receiver())
    results = webhook(httpserver, retry, secret="wrong").send([make_message(1)])
    assert results[0].status == "failed"
    assert "HTTP 401: bad signature" in results[0].error


def test_partial_failure_retries_only_the_failed_recipients(httpserver, retry):
    receiver = Receiver(
        {
            "u1": {"status": "sent", "message_id": "m1"},
            "u2": {"status": "retryable", "error": "mailbox busy"},
            "u3": {"status": "failed", "error": "unknown address"},
        }
    )
    httpserver.expect_request("/hook").respond_with_handler(receiver)
    hook = webhook(httpserver, retry, batch_size=10)
    messages = [make_message(n) for n in (1, 2, 3, 4)]

    results = hook.send(messages)

    assert [(r.recipient_id, r.status) for r in results] == [
        ("u1", "sent"),
        ("u2", "retryable"),
        ("u3", "failed"),
        ("u4", "sent"),
    ]
    assert results[0].message_id == "m1" and results[1].error == "webhook: mailbox busy"
    again = [m for m, r in zip(messages, results, strict=True) if r.retryable]
    receiver.answers = {}
    assert [r.status for r in hook.send(again)] == ["sent"]
    assert [[m["recipient_id"] for m in batch] for batch in receiver.batches][-1] == ["u2"]


def test_5xx_exhausted_leaves_the_batch_retryable(httpserver, retry, sleeps):
    httpserver.expect_request("/hook").respond_with_data("busy", status=502)
    results = webhook(httpserver, retry).send([make_message(1), make_message(2)])
    assert [r.status for r in results] == ["retryable", "retryable"]
    assert results[0].error == "webhook: HTTP 502: busy"
    assert len(sleeps) == 3


@pytest.mark.parametrize(
    ("header", "now", "ok"),
    [
        (signature_header(SECRET, int(NOW), b"{}"), NOW + 10, True),
        (signature_header(SECRET, int(NOW), b"{}"), NOW + 301, False),
        (signature_header("other", int(NOW), b"{}"), NOW, False),
        ("t=nope, v1=abc", NOW, False),
        ("", NOW, False),
    ],
)
def test_verify_signature(header, now, ok):
    assert verify_signature(SECRET, header, b"{}", now=now) is ok
