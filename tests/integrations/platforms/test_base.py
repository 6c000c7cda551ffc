"""The shared retry helper: which waits it honours and where it stops."""

from email.utils import formatdate

import pytest
from werkzeug import Response

from integrations.platforms import SendResult, adapter
from integrations.platforms.webhook import WebhookAdapter

from .conftest import NOW, make_message


def hook(httpserver, retry) -> WebhookAdapter:
    return WebhookAdapter(url=httpserver.url_for("/hook"), secret="s", retry=retry)


def throttle_once(httpserver, headers: dict[str, str]) -> None:
    httpserver.expect_oneshot_request("/hook").respond_with_response(
        Response(status=429, headers=headers)
    )
    httpserver.expect_request("/hook").respond_with_data("{}")


@pytest.mark.parametrize(
    ("headers", "waited"),
    [
        ({"Retry-After": formatdate(NOW + 12, usegmt=True)}, 12.0),
        ({"X-RateLimit-Reset": str(int(NOW + 9))}, 9.0),
        ({"RateLimit-Reset": "4"}, 4.0),
        ({"Retry-After": "soon"}, 0.5),
    ],
)
def test_throttling_waits_as_the_platform_asks(httpserver, retry, sleeps, headers, waited):
    throttle_once(httpserver, headers)
    assert hook(httpserver, retry).send([make_message(1)])[0].status == "sent"
    assert sleeps == [waited]


def test_a_wait_beyond_the_budget_gives_up_at_once(httpserver, retry, sleeps):
    throttle_once(httpserver, {"Retry-After": "3600"})
    (result,) = hook(httpserver, retry).send([make_message(1)])
    assert result.status == "retryable" and "HTTP 429" in result.error
    assert sleeps == [] and len(httpserver.log) == 1


def test_no_answer_is_retryable(retry, sleeps):
    closed = WebhookAdapter(url="http://127.0.0.1:9/hook", secret="s", retry=retry)
    (result,) = closed.send([make_message(1)])
    assert result.status == "retryable"
    assert result.error.startswith("webhook: no answer from http://127.0.0.1:9/hook")
    assert len(sleeps) == 3


def test_unknown_platform_and_status_are_refused():
    with pytest.raises(ValueError, match="unknown email platform 'carrier-pigeon'"):
        adapter({"name": "carrier-pigeon"})
    with pytest.raises(ValueError, match="unknown send status"):
        SendResult("u1", "lost")


def test_requests_are_spaced_to_the_rate_asked_for(httpserver, retry, sleeps):
    httpserver.expect_request("/hook").respond_with_data("{}")
    paced = WebhookAdapter(
        url=httpserver.url_for("/hook"), secret="s", retry=retry, requests_per_second=4,
        batch_size=1,
    )  # fmt: skip

    results = paced.send([make_message(1), make_message(2), make_message(3)])

    assert [result.status for result in results] == ["sent"] * 3
    assert sleeps == [0.25, 0.5]  # the clock stands still here: each request waits its turn


def test_a_rate_of_zero_is_refused():
    with pytest.raises(ValueError, match="requests_per_second must be above 0"):
        WebhookAdapter(url="http://127.0.0.1:9/hook", secret="s", requests_per_second=0)
