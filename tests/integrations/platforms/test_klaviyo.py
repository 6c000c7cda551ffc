"""The Klaviyo adapter against a loopback server that enforces the bulk import job's shape."""

import json

import pytest
from werkzeug import Request, Response

from integrations.platforms import adapter
from integrations.platforms.klaviyo import KlaviyoAdapter

from .conftest import make_message

API_KEY = "pk_test"
REVISION = "2025-01-15"
PATH = "/api/profile-bulk-import-jobs"


def job_errors(request: Request) -> list[str]:
    """What Klaviyo would refuse outright."""
    errors = []
    if request.headers.get("Authorization") != f"Klaviyo-API-Key {API_KEY}":
        errors.append("auth")
    if request.headers.get("revision") != REVISION:
        errors.append("revision")
    if request.headers.get("Content-Type") != "application/vnd.api+json":
        errors.append("content type")
    if len(request.get_data()) > 5_000_000:
        errors.append("payload over 5MB")
    data = json.loads(request.get_data())["data"]
    profiles = data["attributes"]["profiles"]["data"]
    if data.get("type") != "profile-bulk-import-job" or not 1 <= len(profiles) <= 10_000:
        errors.append(f"{len(profiles)} profiles")
    if any(p.get("type") != "profile" for p in profiles):
        errors.append("profile type")
    return errors


class Account:
    """Answers 202 with a job id; a 400 pointing at profiles whose email has no `@`."""

    def __init__(self) -> None:
        self.jobs = 0

    def __call__(self, request: Request) -> Response:
        errors = job_errors(request)
        if errors:
            status = 401 if "auth" in errors else 400
            return Response(json.dumps({"errors": [{"detail": e} for e in errors]}), status)
        profiles = json.loads(request.get_data())["data"]["attributes"]["profiles"]["data"]
        invalid = [
            {
                "status": 400,
                "code": "invalid",
                "detail": "Invalid email address",
                "source": {"pointer": f"/data/attributes/profiles/data/{i}/attributes/email"},
            }
            for i, p in enumerate(profiles)
            if "@" not in p["attributes"]["email"]
        ]
        if invalid:
            return Response(json.dumps({"errors": invalid}), 400)
        self.jobs += 1
        job = {"data": {"type": "profile-bulk-import-job", "id": f"job-{self.jobs}"}}
        return Response(json.dumps(job), status=202, content_type="application/vnd.api+json")


@pytest.fixture
def klaviyo(httpserver, retry) -> KlaviyoAdapter:
    return KlaviyoAdapter(
        api_key=API_KEY, list_id="L1", base_url=httpserver.url_for("/"), retry=retry
    )


def profiles_sent(httpserver) -> list[list[dict]]:
    return [
        json.loads(request.get_data())["data"]["attributes"]["profiles"]["data"]
        for request, response in httpserver.log
        if response.status_code == 202
    ]


def test_429_with_retry_after_then_202(httpserver, klaviyo, sleeps):
    httpserver.expect_oneshot_request(PATH, method="POST").respond_with_response(
        Response(status=429, headers={"Retry-After": "2"})
    )
    httpserver.expect_request(PATH, method="POST").respond_with_handler(Account())

    results = klaviyo.send([make_message(1), make_message(2)])

    assert [(r.status, r.message_id) for r in results] == [("sent", "job-1")] * 2
    assert sleeps == [2.0] and len(httpserver.log) == 2
    request, _ = httpserver.log[1]
    body = json.loads(request.get_data())
    assert body["data"]["relationships"] == {"lists": {"data": [{"type": "list", "id": "L1"}]}}
    assert body["data"]["attributes"]["profiles"]["data"][0]["attributes"] == {
        "email": "user1@example.com",
        "external_id": "u1",
        "properties": {
            "recsite_block": "<p>Hello 1</p>",
            "recsite_block_subject": "Picks for user 1",
            "recsite_block_delivery_id": "d1",
        },
    }


def test_jobs_hold_at_most_10000_profiles(httpserver, klaviyo):
    httpserver.expect_request(PATH).respond_with_handler(Account())
    results = klaviyo.send([make_message(n) for n in range(10_001)])
    assert {r.status for r in results} == {"sent"} and len(results) == 10_001
    assert [len(p) for p in profiles_sent(httpserver)] == [10_000, 1]
    assert results[0].message_id == "job-1" and results[-1].message_id == "job-2"


def test_jobs_stay_under_5mb_and_huge_profiles_stay_home(httpserver, klaviyo):
    httpserver.expect_request(PATH).respond_with_handler(Account())
    messages = [make_message(n, html="x" * 90_000) for n in range(60)]
    messages.append(make_message(60, html="x" * 100_001))

    results = klaviyo.send(messages)

    assert [r.status for r in results[:60]] == ["sent"] * 60
    assert results[60].status == "failed" and "larger than 100000" in results[60].error
    assert [len(p) for p in profiles_sent(httpserver)] == [55, 5]
    assert all(len(r.get_data()) <= 5_000_000 for r, _ in httpserver.log)


def test_profiles_a_400_points_at_fail_and_the_rest_are_retryable(httpserver, klaviyo):
    httpserver.expect_request(PATH).respond_with_handler(Account())
    messages = [make_message(1), make_message(2, email="not-an-address"), make_message(3)]

    results = klaviyo.send(messages)

    assert [r.status for r in results] == ["retryable", "failed", "retryable"]
    assert results[1].error == "klaviyo: Invalid email address"
    again = [m for m, r in zip(messages, results, strict=True) if r.retryable]
    assert [r.status for r in klaviyo.send(again)] == ["sent", "sent"]


def test_a_wrong_key_fails_without_retrying(httpserver, retry, sleeps):
    httpserver.expect_request(PATH).respond_with_handler(Account())
    wrong = adapter(
        {"name": "klaviyo", "api_key": "nope"}, base_url=httpserver.url_for("/"), retry=retry
    )
    (result,) = wrong.send([make_message(1)])
    assert result.status == "failed" and "HTTP 401" in result.error
    assert sleeps == []
