"""CSRF: every admin form refuses a POST without the CSRF token, and the APIs cannot be driven
by a browser's cookies at all (a staff session without an API key is a 401), so they need
no token. The only other POST a browser can make is the one-click unsubscribe, exempt by
design: its signed token is the authentication (RFC 8058 POSTs come from mail providers)."""

import logging

import pytest
from django.test import Client
from rest_framework.authentication import BasicAuthentication, SessionAuthentication
from rest_framework.views import APIView

from recommendations.models import ApiKey
from tests.security.conftest import SUPERUSER, routes, url_fill

pytestmark = pytest.mark.django_db

CSRF_REFUSED = b"CSRF verification failed"


@pytest.fixture(autouse=True)
def _quiet_request_log():
    loggers = [logging.getLogger(name) for name in ("django.request", "django.security.csrf")]
    previous = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    yield
    for logger, level in zip(loggers, previous, strict=True):
        logger.setLevel(level)


def _signed_in(world, principal: str = SUPERUSER) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.staff[principal])
    client.get("/admin/")  # sets the CSRF cookie, as a browser would have it
    return client


def _admin_urls(world) -> list[str]:
    urls = []
    for route in routes():
        if not route.route.startswith("admin/"):
            continue
        if route.name == "admin:app_list":
            urls.append("/admin/bulletins/")
        else:
            urls.append(url_fill(route, world))
    return urls


def test_every_admin_url_refuses_a_post_without_the_csrf_token(world):
    """Add, change, delete, actions (posted to the changelist), password forms, logout and
    the custom views (send now, test send, previews, reports): all refused with 403 before
    any view runs, as the superuser who could otherwise do everything."""
    client = _signed_in(world)
    accepted = []
    for url in _admin_urls(world):
        response = client.post(url, {"action": "delete_selected", "_selected_action": ["1"]})
        if response.status_code != 403 or CSRF_REFUSED not in response.content:
            accepted.append(f"{url}: {response.status_code}")
    assert not accepted, "admin URLs that took a POST without a CSRF token:\n" + "\n".join(accepted)


def test_send_now_and_test_send_refuse_a_post_without_the_token(world, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    client = _signed_in(world)
    bulletin = world.bulletin.pk
    send = client.post(f"/admin/bulletins/bulletin/{bulletin}/send/", {"run_key": ""})
    test_send = client.post(
        f"/admin/bulletins/bulletin/{bulletin}/preview/",
        {"user": world.user.external_id, "test_to": "attacker@example.com"},
    )
    assert (send.status_code, test_send.status_code) == (403, 403)
    assert world.bulletin.runs.count() == 1  # the world's own run; nothing started


def test_the_login_form_refuses_a_post_without_the_token(world):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/admin/login/", {"username": "root", "password": "pw"})
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


def test_the_same_action_with_the_token_goes_through(world):
    """The refusals above are the CSRF check's, not a permission's: with the token from
    the cookie, the superuser's revoke action works."""
    client = _signed_in(world)
    api_key = ApiKey.objects.get(kind=ApiKey.Kind.SECRET)
    response = client.post(
        "/admin/recommendations/apikey/",
        {
            "action": "revoke",
            "_selected_action": [api_key.pk],
            "csrfmiddlewaretoken": client.cookies["csrftoken"].value,
        },
    )
    assert response.status_code == 302
    api_key.refresh_from_db()
    assert not api_key.is_active


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/api/v1/recommendations/?placement=for-you&user=reader-1", None),
        (
            "post",
            "/api/v1/events/",
            '[{"user_id": "reader-1", "item_id": "item-1", "event_type": "view"}]',
        ),  # fmt: skip
        ("post", "/api/v1/identify/", '{"anonymous_id": "visitor-1", "user_id": "reader-1"}'),
        ("get", "/api/v1/bulletins/weekly/content/reader-1/", None),
    ],
)
def test_a_staff_session_without_a_key_is_a_401_on_the_apis(world, method, path, body):
    client = _signed_in(world)
    if method == "post":
        response = client.post(path, body, content_type="application/json")
    else:
        response = client.get(path)
    assert response.status_code == 401


def test_no_api_view_authenticates_by_session_or_password():
    """Only API keys authenticate the APIs: no DRF view lists session (cookie) or basic
    authentication, which would make its POSTs forgeable from another site."""
    checked = 0
    for route in routes():
        view_class = getattr(route.callback, "cls", None)
        if view_class is None or not issubclass(view_class, APIView):
            continue
        checked += 1
        authenticators = view_class().get_authenticators()
        kinds = [type(each) for each in authenticators]
        assert SessionAuthentication not in kinds and BasicAuthentication not in kinds, route
    assert checked >= 5  # recommendations, events, identify, bulletin content, schema, docs


def test_outside_admin_only_the_one_click_unsubscribe_takes_a_cookie_post(world):
    """Every other URL answers a cross-site POST from a signed-in browser with 403 (the CSRF
    check), 405 (the API description: GET only) or 401 (the APIs: no key): nothing there
    acts on the browser's behalf."""
    client = _signed_in(world)
    answers = {}
    for route in routes():
        if route.route.startswith("admin/"):
            continue
        response = client.post(url_fill(route, world), "{}", content_type="application/json")
        answers[route.name] = response.status_code
    assert answers == {
        "api-bulletin-content": 401,
        "api-recommendations": 401,
        "api-events": 401,
        "api-identify": 401,
        "api-schema": 405,
        "api-docs": 405,
        "demo": 403,  # the CSRF check refuses it before the view's GET-only rule
        "demo-item": 403,
        "bulletin-click": 403,
        "bulletin-open": 403,
        "bulletin-unsubscribe": 200,  # exempt by design: the signed token authenticates
        "home": 403,
    }
