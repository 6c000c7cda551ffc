"""Who may open which URL: every URL pattern the resolver knows (admin's generated pages for
every registered model included), requested by each principal, against an explicit table.

A URL pattern without a row in the table fails `test_every_url_has_an_expectation`, so nobody
adds an unprotected URL silently: a new page, API or public link needs its row here, which is
where a reviewer sees who can reach it. A row for a URL that no longer exists fails too.

Outcomes: `OK` (2xx), `REDIRECT` (3xx to the same resource or the resource's target, never to
the login page), `LOGIN` (3xx to the admin login page), or an HTTP status (401, 403, 404, 405).
API keys authenticate only the API: for admin they are anonymous. A staff session does not
authenticate the API (401), so no API call rides on a browser's cookies.
"""

import json
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from django.contrib import admin
from django.test import Client

from tests.security.conftest import (
    ANONYMOUS,
    MARKETER,
    PRINCIPALS,
    PUBLIC_KEY,
    SECRET_KEY,
    STAFF,
    SUPERUSER,
    Route,
    routes,
    url_fill,
)

pytestmark = pytest.mark.slow  # every URL for every principal

OK, REDIRECT, LOGIN = "ok", "redirect", "login page"
EVIL = "https://evil.example/"


def everyone(outcome) -> dict:
    return dict.fromkeys(PRINCIPALS, outcome)


def admin_page(*, staff, marketer, superuser=OK) -> dict:
    """An admin page: the login page for anyone not signed in as staff (API keys included)."""
    return {
        ANONYMOUS: LOGIN,
        STAFF: staff,
        MARKETER: marketer,
        SUPERUSER: superuser,
        PUBLIC_KEY: LOGIN,
        SECRET_KEY: LOGIN,
    }


def api(*, public, secret) -> dict:
    """An API endpoint: keys only; no key (a staff session included) is a 401."""
    return {**everyone(401), PUBLIC_KEY: public, SECRET_KEY: secret}


@dataclass(frozen=True)
class ModelAdmin:
    """A registered model's admin pages: what a marketer may do there (written out here,
    not read from recommendations/roles.py, so a change to the role shows up as a failure
    to look at), and the pages admin switches off for everybody, superusers included."""

    marketer: str = ""  # "view add change delete", or a part of it
    off: str = ""


ADMIN_MODELS = {
    "auth.group": ModelAdmin(),
    "auth.user": ModelAdmin(),
    "django_celery_beat.periodictask": ModelAdmin("view"),
    "django_celery_beat.clockedschedule": ModelAdmin(),
    "django_celery_beat.crontabschedule": ModelAdmin("view"),  # schedules are set on bulletins
    "django_celery_beat.solarschedule": ModelAdmin(),
    "django_celery_beat.intervalschedule": ModelAdmin(),
    "recommendations.enduser": ModelAdmin("view"),
    "recommendations.item": ModelAdmin("view"),
    "recommendations.eventtype": ModelAdmin("view"),
    "recommendations.interaction": ModelAdmin("view"),
    "recommendations.apikey": ModelAdmin(),
    "recommendations.placement": ModelAdmin("view add change delete"),
    "recommendations.rule": ModelAdmin("view add change delete"),
    "recommendations.modelversion": ModelAdmin("view", off="add"),
    "recommendations.recommendationset": ModelAdmin("view", off="add"),
    "recommendations.recommendationrun": ModelAdmin("view", off="add"),
    "recommendations.segment": ModelAdmin("view add change delete"),
    "recommendations.personalizerun": ModelAdmin("view", off="add"),
    "bulletins.platformconnection": ModelAdmin("view"),
    "bulletins.bulletin": ModelAdmin("view add change delete"),
    "bulletins.widgetengagement": ModelAdmin("view", off="add delete"),
    "bulletins.bulletinrun": ModelAdmin("view change", off="add"),
    "bulletins.delivery": ModelAdmin("view", off="add"),
    "bulletins.unsubscribe": ModelAdmin("view"),
    "bulletins.click": ModelAdmin("view", off="add"),
    "bulletins.open": ModelAdmin("view", off="add"),
}

# The permission each generated admin page needs (any of them).
ADMIN_VIEWS = {
    "changelist": {"view", "change"},
    "add": {"add"},
    "change": {"view", "change"},
    "delete": {"delete"},
    "history": {"view", "change"},
}


def _model_rows(label: str, spec: ModelAdmin) -> dict[str, dict]:
    app_label, model = label.split(".")
    key = f"{app_label}_{model}"
    rows = {}
    for view, needs in ADMIN_VIEWS.items():
        switched_off = view in spec.off.split()
        marketer = OK if needs & set(spec.marketer.split()) and not switched_off else 403
        rows[f"admin:{key}_{view}"] = admin_page(
            staff=403, marketer=marketer, superuser=403 if switched_off else OK
        )
    # `<id>/` redirects any staff member to the change page, which then decides.
    redirect = f"admin/{app_label}/{model}/<path:object_id>/"
    rows[redirect] = admin_page(staff=REDIRECT, marketer=REDIRECT, superuser=REDIRECT)
    return rows


EXPECTED: dict[str, dict] = {
    # The admin site's own pages.
    "admin:index": admin_page(staff=OK, marketer=OK),
    "admin:login": {**everyone(OK), STAFF: REDIRECT, MARKETER: REDIRECT, SUPERUSER: REDIRECT},
    "admin:logout": {**everyone(REDIRECT), STAFF: 405, MARKETER: 405, SUPERUSER: 405},  # POST
    "admin:password_change": admin_page(staff=OK, marketer=OK),
    "admin:password_change_done": admin_page(staff=OK, marketer=OK),
    "admin:autocomplete": admin_page(staff=403, marketer=403, superuser=403),  # no field asked
    "admin:jsi18n": admin_page(staff=OK, marketer=OK),
    "admin:view_on_site": admin_page(staff=404, marketer=404, superuser=404),  # no model has one
    "admin:app_list[auth]": admin_page(staff=404, marketer=404),
    "admin:app_list[django_celery_beat]": admin_page(staff=404, marketer=OK),
    "admin:app_list[recommendations]": admin_page(staff=404, marketer=OK),
    "admin:app_list[bulletins]": admin_page(staff=404, marketer=OK),
    "admin/(?P<url>.*)$": admin_page(staff=404, marketer=404, superuser=404),
    # Generated model pages, then the custom admin views.
    **{
        name: row
        for label, spec in ADMIN_MODELS.items()
        for name, row in _model_rows(label, spec).items()
    },
    "admin:auth_user_password_change": admin_page(staff=403, marketer=403),
    "admin:recommendations_placement_preview": admin_page(staff=403, marketer=OK),
    "admin:recommendations_placement_compare": admin_page(staff=403, marketer=OK),
    # POST only: a GET is refused once the permission is checked.
    "admin:recommendations_segment_refresh_all": admin_page(staff=403, marketer=405, superuser=405),
    "admin:bulletins_bulletin_preview": admin_page(staff=403, marketer=OK),
    "admin:bulletins_bulletin_send": admin_page(staff=403, marketer=OK),  # GET: the question
    "admin:bulletins_bulletin_report": admin_page(staff=403, marketer=OK),
    # The APIs.
    "api-recommendations": api(public=OK, secret=OK),
    "api-events": api(public=OK, secret=OK),
    "api-identify": api(public=OK, secret=OK),
    "api-bulletin-content": api(public=403, secret=OK),
    # Public: anyone on the internet.
    "api-schema": everyone(OK),
    "api-docs": everyone(OK),
    "demo": everyone(OK),  # only while DEMO_PAGE_ENABLED: see test_the_demo_is_off_...
    "demo-item": everyone(OK),
    "bulletin-click": everyone(REDIRECT),  # to the item's own URL
    "bulletin-open": everyone(OK),
    "bulletin-unsubscribe": everyone(OK),  # GET asks; only a POST unsubscribes
    "home": everyone(REDIRECT),  # to the admin
}

# How each API is called (a GET otherwise).
REQUESTS = {
    "api-recommendations": ("get", "?placement=for-you&user=reader-1", None),
    "api-events": (
        "post",
        "",
        [{"user_id": "reader-1", "item_id": "item-1", "event_type": "view"}],
    ),
    "api-identify": ("post", "", {"anonymous_id": "visitor-1", "user_id": "reader-1"}),
}


@dataclass(frozen=True)
class Target:
    key: str
    route: Route
    app_label: str = ""


def targets() -> list[Target]:
    """Every URL pattern as the table names it; the admin's app index, a regex over the app
    labels, is one row per app."""
    found = []
    for route in routes():
        if route.name == "admin:app_list":
            labels = route.route.split("(?P<app_label>", 1)[1].split(")", 1)[0].split("|")
            found += [Target(f"admin:app_list[{label}]", route, label) for label in labels]
        else:
            found.append(Target(route.key, route))
    return found


def outcome(response) -> str | int:
    if 300 <= response.status_code < 400:
        return LOGIN if response["Location"].startswith("/admin/login/") else REDIRECT
    if 200 <= response.status_code < 300:
        return OK
    return response.status_code


def request(client: Client, target: Target, url: str, extra_query: str = ""):
    method, query, body = REQUESTS.get(target.key, ("get", "", None))
    query = "&".join(part for part in (query.lstrip("?"), extra_query) if part)
    full = f"{url}?{query}" if query else url
    if method == "post":
        return client.post(full, json.dumps(body), content_type="application/json")
    return client.get(full)


@pytest.fixture(autouse=True)
def _quiet_request_log():
    """Every 403 and 404 below is expected; Django would log each with its traceback."""
    logger = logging.getLogger("django.request")
    previous = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(previous)


def test_every_url_has_an_expectation():
    keys = {target.key for target in targets()}
    missing = sorted(keys - set(EXPECTED))
    assert not missing, (
        "URLs without a row in tests/security/test_permissions_matrix.py (say who may open "
        f"them): {missing}"
    )
    stale = sorted(set(EXPECTED) - keys)
    assert not stale, f"rows for URLs that no longer exist: {stale}"


def test_every_admin_model_is_in_the_table():
    """`ADMIN_MODELS` names every registered model (a new model admin needs its row)."""
    assert {
        f"{model._meta.app_label}.{model._meta.model_name}" for model in admin.site._registry
    } == set(ADMIN_MODELS)


@pytest.mark.django_db
def test_each_principal_gets_the_expected_outcome_on_every_url(world):
    wrong = []
    clients = {principal: world.client(principal) for principal in PRINCIPALS}
    for target in targets():
        url = url_fill(target.route, world, app_label=target.app_label)
        for principal, expected in EXPECTED[target.key].items():
            got = outcome(request(clients[principal], target, url))
            if got != expected:
                wrong.append(f"{target.key} ({url}) as {principal}: {got}, expected {expected}")
    assert not wrong, "\n".join(wrong)


def test_no_url_is_open_to_anonymous_visitors_unless_listed_public():
    """A reading of the table: what answers OK to someone not signed in is exactly the
    public set (links in emails, the demo, the API description, the admin login page)."""
    public = sorted(key for key, row in EXPECTED.items() if row[ANONYMOUS] in (OK, REDIRECT))
    assert public == [
        "admin:login",
        "admin:logout",  # redirects to the admin index, which asks to sign in
        "api-docs",
        "api-schema",
        "bulletin-click",
        "bulletin-open",
        "bulletin-unsubscribe",
        "demo",
        "demo-item",
        "home",  # redirects to the admin, which asks to sign in
    ]


@pytest.mark.django_db
def test_static_files_are_public(world):
    for principal in (ANONYMOUS, PUBLIC_KEY):
        response = world.client(principal).get("/static/recsite/widget.js")
        assert response.status_code == 200, principal


@pytest.mark.django_db
def test_the_demo_is_off_for_everyone_when_disabled(world, settings):
    settings.DEMO_PAGE_ENABLED = False
    for principal in PRINCIPALS:
        client = world.client(principal)
        assert client.get("/demo/").status_code == 404, principal
        assert client.get(f"/demo/items/{world.item.external_id}/").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/r/{token}", "/u/{token}"])
def test_a_tampered_or_foreign_token_is_a_404_for_everyone(world, path):
    from recsite import tokens

    good = tokens.click_token(world.delivery.pk, 1, world.item.external_id)
    for token in (good[:-2] + "xx", tokens.open_token(world.delivery.pk), "not-a-token"):
        for principal in (ANONYMOUS, SUPERUSER, SECRET_KEY):
            response = world.client(principal).get(path.format(token=token))
            assert response.status_code == 404, (path, token, principal)
            assert "Location" not in response


@pytest.mark.django_db
def test_no_url_redirects_off_the_site_whatever_the_query_asks(world):
    """Every URL, asked to go elsewhere through the usual parameters: no answer sends the
    browser to another site. The click link goes to the item's own URL from the database."""
    evil = f"next={EVIL}&url={EVIL}&redirect_to={EVIL}&return_to={EVIL}&_changelist_filters={EVIL}"
    offsite = []
    for principal in (ANONYMOUS, SUPERUSER):
        client = world.client(principal)
        for target in targets():
            url = url_fill(target.route, world, app_label=target.app_label)
            response = request(client, target, url, extra_query=evil)
            location = response.get("Location", "")
            target_host = urlsplit(location)
            if (target_host.netloc or target_host.scheme) and not location.startswith(
                world.item.url
            ):
                offsite.append(f"{url} as {principal} -> {location}")
    assert not offsite, "\n".join(offsite)


@pytest.mark.django_db
def test_signing_in_never_follows_a_next_to_another_site(world):
    client = Client()
    response = client.post(
        f"/admin/login/?next={EVIL}", {"username": "root", "password": "pw", "next": EVIL}
    )
    assert response.status_code == 302
    assert not response["Location"].startswith(("http", "//")), response["Location"]


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["javascript:alert(1)", "//evil.example/x", "/relative"])
def test_the_click_link_never_redirects_to_a_non_web_item_url(world, url):
    from recsite import tokens

    type(world.item).objects.filter(pk=world.item.pk).update(url=url)
    token = tokens.click_token(world.delivery.pk, 1, world.item.external_id)
    response = Client().get(f"/r/{token}")
    assert response.status_code == 404
    assert "Location" not in response


@pytest.mark.django_db
def test_a_key_revoked_in_admin_stops_working_at_once(world):
    from recommendations.models import ApiKey

    client = world.client(SECRET_KEY)
    url = "/api/v1/recommendations/?placement=for-you&user=reader-1"
    assert client.get(url).status_code == 200  # the key's lookup is cached now
    admin_client = world.client(SUPERUSER)
    secret = ApiKey.objects.get(kind=ApiKey.Kind.SECRET)
    admin_client.post(
        "/admin/recommendations/apikey/", {"action": "revoke", "_selected_action": [secret.pk]}
    )
    assert client.get(url).status_code == 401
