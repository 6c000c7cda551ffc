"""GET /api/v1/recommendations/, POST /api/v1/identify/, and what each kind of key may do."""

import time
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from recommendations.models import (
    EndUser,
    Interaction,
    Item,
    Placement,
    PlacementVariant,
)
from recommendations.services.api_keys import api_key_create, api_keys_revoke
from recommendations.services.events import events_ingest
from recommendations.services.recommending import recommendations_refresh_user
from recsite import tokens
from recsite.local_cache import local_caches_clear

pytestmark = pytest.mark.django_db
SITE = "https://shop.example"


@pytest.fixture
def computed(trained, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("recommend", "--all", "-v0")
    return trained


@pytest.fixture
def server():
    _, key = api_key_create(name="backend", kind="secret")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture
def public_key():
    return api_key_create(name="site", kind="public", allowed_origins=[SITE])[1]


def _token(url: str) -> dict:
    return tokens.token_read(tokens.WIDGET_CLICK, urlsplit(url).path.removeprefix("/r/"))


def test_a_cached_list_comes_with_titles_links_and_explanations(computed, server):
    user = EndUser.objects.get(external_id="user-00007")

    response = server.get("/api/v1/recommendations/?user=user-00007&placement=for-you&k=5")

    assert response.status_code == 200
    body = response.json()
    assert body["placement"] == "for-you" and body["user"] == "user-00007"
    assert body["variant"] is None and len(body["request_id"]) == 32
    items = body["items"]
    assert [entry["position"] for entry in items] == [1, 2, 3, 4, 5]
    stored = {
        i.external_id: i for i in Item.objects.filter(external_id__in=[e["id"] for e in items])
    }
    for entry in items:
        item = stored[entry["id"]]
        assert entry["title"] == item.title and entry["item_url"] == item.url
        assert entry["image"] == item.image_url and entry["source"] == "inhouse"
        assert entry["explanation"] and entry["reason"]
        payload = _token(entry["url"])
        assert payload["user_id"] == user.pk and payload["position"] == entry["position"]
        assert payload["item_id"] == entry["id"] and payload["source"] == "inhouse"


def test_the_second_request_for_a_list_touches_no_database(
    computed, server, django_assert_num_queries, monkeypatch
):
    # The embedded cache reads the data's generation once a second (test_data_generation.py).
    monkeypatch.setattr("recsite.data_generation.SECONDS", 3600)
    url = "/api/v1/recommendations/?user=user-00007&placement=for-you"
    first = server.get(url).json()["items"]

    with django_assert_num_queries(0):
        again = server.get(url).json()["items"]

    assert [entry["id"] for entry in again] == [entry["id"] for entry in first]


def test_without_a_stored_list_the_users_list_is_computed(trained, server):
    response = server.get("/api/v1/recommendations/?user=user-00011&placement=for-you&k=4")

    items = response.json()["items"]
    assert response.status_code == 200 and len(items) == 4
    seen = set(
        Interaction.objects.filter(user__external_id="user-00011").values_list(
            "item__external_id", flat=True
        )
    )
    assert not seen & {entry["id"] for entry in items}


def test_an_unknown_visitor_gets_the_placements_non_personalized_list(trained, server):
    response = server.get("/api/v1/recommendations/?user=anon-new&placement=for-you&k=3")

    items = response.json()["items"]
    assert response.status_code == 200 and len(items) == 3
    assert {entry["source"] for entry in items} == {"trending"}
    assert {_token(entry["url"])["user_id"] for entry in items} == {0}
    assert not EndUser.objects.filter(external_id="anon-new").exists()  # a server's GET


def test_the_widgets_first_request_gives_a_new_visitor_a_profile(trained, public_key):
    url = f"/api/v1/recommendations/?user=anon-first&placement=for-you&key={public_key}"

    items = APIClient().get(url, HTTP_ORIGIN=SITE).json()["items"]

    visitor = EndUser.objects.get(external_id="anon-first")
    assert visitor.is_anonymous
    assert {_token(entry["url"])["user_id"] for entry in items} == {visitor.pk}


def test_an_item_made_unavailable_leaves_the_served_list(computed, server):
    url = "/api/v1/recommendations/?user=user-00007&placement=for-you"
    first = server.get(url).json()["items"]
    Item.objects.filter(external_id=first[0]["id"]).update(available=False)
    local_caches_clear()  # what the item cache's minute does

    again = [entry["id"] for entry in server.get(url).json()["items"]]

    assert first[0]["id"] not in again and again[0] == first[1]["id"]


def test_similar_items_need_the_page_item(computed, server):
    Placement.objects.create(slug="more-like-this", name="More like this", strategy="similar_items")
    item = Item.objects.order_by("pk").first()

    missing = server.get("/api/v1/recommendations/?placement=more-like-this&user=user-00001")
    response = server.get(
        f"/api/v1/recommendations/?placement=more-like-this&item={item.external_id}&k=5"
    )

    assert missing.status_code == 400 and "item" in missing.json()["errors"]
    items = response.json()["items"]
    assert response.status_code == 200 and len(items) == 5
    assert item.external_id not in {entry["id"] for entry in items}
    assert {entry["reason"] for entry in items} == {"similar"}


@pytest.mark.parametrize(
    "query, status, field",
    [
        ("placement=nowhere&user=u", 404, None),
        ("user=u", 400, "placement"),
        ("placement=for-you&k=0", 400, "k"),
        ("placement=for-you&k=51", 400, "k"),
        ("placement=for-you&k=many", 400, "k"),
        ("placement=bad slug!", 400, "placement"),
    ],
)
def test_bad_queries_get_a_clear_error(trained, server, query, status, field):
    response = server.get(f"/api/v1/recommendations/?{query}")

    assert response.status_code == status
    if field:
        assert field in response.json()["errors"]
    else:
        assert "placement" in response.json()["message"]


def test_arms_split_visitors_stably_and_the_holdout_is_not_personalized(computed, server):
    placement = Placement.objects.get(slug="for-you")
    PlacementVariant.objects.create(placement=placement, name="model", share=50, source="inhouse")
    holdout = PlacementVariant.objects.create(
        placement=placement, name="holdout", share=50, source="trending", is_control=True
    )
    arms = {}
    for n in range(1, 41):
        user = f"user-{n:05d}"
        body = server.get(f"/api/v1/recommendations/?user={user}&placement=for-you").json()
        again = server.get(f"/api/v1/recommendations/?user={user}&placement=for-you").json()
        assert again["variant"] == body["variant"]
        arms[user] = body

    assert {body["variant"] for body in arms.values()} == {"model", "holdout"}
    for body in arms.values():
        sources = {entry["source"] for entry in body["items"]}
        variant_ids = {_token(entry["url"])["variant_id"] for entry in body["items"]}
        if body["variant"] == "holdout":
            assert sources == {"trending"} and variant_ids == {holdout.pk}
        else:
            assert sources == {"inhouse"} and variant_ids != {holdout.pk}


def test_a_public_key_works_from_its_sites_origin_only(trained, public_key):
    client = APIClient()
    url = f"/api/v1/recommendations/?placement=for-you&user=user-00002&key={public_key}"

    allowed = client.get(url, HTTP_ORIGIN=SITE)
    other = client.get(url, HTTP_ORIGIN="https://evil.example")
    server_side = client.get(url)

    assert allowed.status_code == 200 and allowed["Access-Control-Allow-Origin"] == SITE
    assert other.status_code == 403 and "evil.example" in other.json()["message"]
    assert "Access-Control-Allow-Origin" not in other
    assert server_side.status_code == 200


def test_a_preflight_from_the_site_is_answered(trained, public_key):
    response = APIClient().options(
        "/api/v1/identify/",
        HTTP_ORIGIN=SITE,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type",
    )

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == SITE
    assert "authorization" in response["Access-Control-Allow-Headers"]


def test_a_secret_key_in_the_url_is_refused(trained):
    _, secret = api_key_create(name="backend", kind="secret")

    response = APIClient().get(f"/api/v1/recommendations/?placement=for-you&key={secret}")

    assert response.status_code == 401 and "Authorization header" in response.json()["message"]


def test_a_public_key_reads_lists_and_writes_events_but_nothing_else(trained, public_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {public_key}")

    content = client.get("/api/v1/bulletins/weekly/content/user-00001/")

    assert content.status_code == 403


def test_public_keys_are_rate_limited_per_visitor(trained, public_key, settings):
    settings.API_PUBLIC_RATE = "3/min"
    client = APIClient()
    url = f"/api/v1/recommendations/?placement=for-you&key={public_key}"

    codes = [client.get(url, REMOTE_ADDR="10.0.0.1").status_code for _ in range(4)]
    other_visitor = client.get(url, REMOTE_ADDR="10.0.0.2").status_code

    assert codes == [200, 200, 200, 429] and other_visitor == 200


def test_a_revoked_key_stops_working_at_once(trained):
    api_key, secret = api_key_create(name="backend", kind="secret")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get("/api/v1/recommendations/?placement=for-you").status_code == 200

    api_keys_revoke(keys=type(api_key).objects.filter(pk=api_key.pk))

    assert client.get("/api/v1/recommendations/?placement=for-you").status_code == 401


def test_widget_events_come_as_text_in_small_batches(trained, public_key):
    client = APIClient()
    item = Item.objects.order_by("pk").first()
    event = {
        "user_id": "anon-1",
        "item_id": item.external_id,
        "event_type": "impression",
        "event_id": "imp:r1:1",
        "context": {"placement": "for-you", "position": 1},
    }
    url = f"/api/v1/events/?key={public_key}"

    stored = client.post(url, data=f"[{_json(event)}]", content_type="text/plain")
    too_many = client.post(url, [event] * 101, format="json")

    assert stored.status_code == 200 and stored.json()["accepted"] == 1
    assert Interaction.objects.get(event_id="imp:r1:1").source == Interaction.Source.WIDGET
    assert too_many.status_code == 413


def _json(value) -> str:
    import json

    return json.dumps(value)


def _view(user: str, item: Item, n: int) -> dict:
    return {"user_id": user, "item_id": item.external_id, "event_type": "view", "event_id": n}


def test_identify_carries_the_visitors_history_over(computed, public_key):
    items = list(Item.objects.order_by("pk")[:3])
    events_ingest(events=[_view("anon-7", item, f"a{n}") for n, item in enumerate(items)])
    known = EndUser.objects.get(external_id="user-00003")
    before = Interaction.objects.filter(user=known).count()

    response = APIClient().post(
        f"/api/v1/identify/?key={public_key}",
        data=_json({"anonymous_id": "anon-7", "user_id": "user-00003"}),
        content_type="text/plain",
    )

    assert response.status_code == 200
    assert response.json() == {"user_id": "user-00003", "merged_events": 3}
    assert Interaction.objects.filter(user=known).count() == before + 3
    assert not EndUser.objects.filter(external_id="anon-7").exists()


def test_identify_of_a_new_user_takes_over_the_visitor_profile(trained, server):
    item = Item.objects.order_by("pk").first()
    events_ingest(events=[_view("anon-8", item, "b1")])

    response = server.post(
        "/api/v1/identify/", {"anonymous_id": "anon-8", "user_id": "new-user"}, format="json"
    )

    user = EndUser.objects.get(external_id="new-user")
    assert response.json()["merged_events"] == 1 and not user.is_anonymous
    assert user.interactions.count() == 1


@pytest.mark.parametrize(
    "body, field",
    [
        ({"anonymous_id": "user-00001", "user_id": "user-00002"}, "anonymous_id"),
        ({"anonymous_id": "anon-9", "user_id": "anon-9"}, "user_id"),
        ({"anonymous_id": "", "user_id": "user-00002"}, "anonymous_id"),
        ({"anonymous_id": "anon-9", "user_id": ["x"]}, "user_id"),
    ],
)
def test_identify_refuses_what_it_must_not_merge(trained, server, body, field):
    before = Interaction.objects.count(), EndUser.objects.count()

    response = server.post("/api/v1/identify/", body, format="json")

    assert response.status_code == 400 and field in response.json()["errors"]
    assert (Interaction.objects.count(), EndUser.objects.count()) == before


def test_identify_is_idempotent(trained, server):
    item = Item.objects.order_by("pk").first()
    events_ingest(events=[_view("anon-10", item, "c1")])
    body = {"anonymous_id": "anon-10", "user_id": "user-00004"}

    first = server.post("/api/v1/identify/", body, format="json").json()
    again = server.post("/api/v1/identify/", body, format="json").json()

    assert (first["merged_events"], again["merged_events"]) == (1, 0)


def test_an_event_refreshes_the_served_list(computed, server, django_capture_on_commit_callbacks):
    url = "/api/v1/recommendations/?user=user-00005&placement=for-you"
    before = [entry["id"] for entry in server.get(url).json()["items"]]
    events = [
        {"user_id": "user-00005", "item_id": item_id, "event_type": "purchase", "event_id": item_id}
        for item_id in before[:3]
    ]

    with django_capture_on_commit_callbacks(execute=True):
        server.post("/api/v1/events/", events, format="json")
    user = EndUser.objects.get(external_id="user-00005")
    recommendations_refresh_user(user_pk=user.pk)  # what the debounced task does
    after = server.get(url).json()["items"]

    assert not set(before[:3]) & {entry["id"] for entry in after}  # consumed: dropped out


@pytest.mark.services
def test_a_real_worker_refreshes_the_list_within_seconds(trained, celery_worker_on_redis):
    from recommendations.services.recommending import recommendations_compute_all_in_process

    recommendations_compute_all_in_process()
    _, key = api_key_create(name="backend", kind="secret")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    url = "/api/v1/recommendations/?user=user-00006&placement=for-you"
    before = [entry["id"] for entry in client.get(url).json()["items"]]
    watched = before[0]
    client.post(
        "/api/v1/events/",
        [{"user_id": "user-00006", "item_id": watched, "event_type": "purchase"}],
        format="json",
    )

    started = time.monotonic()
    while time.monotonic() - started < 20:
        after = client.get(url).json()["items"]
        if watched not in {entry["id"] for entry in after}:
            break
        time.sleep(0.2)
    assert watched not in {entry["id"] for entry in after}
    assert time.monotonic() - started < 10


def test_the_openapi_schema_describes_the_endpoints(client):
    schema = client.get("/api/v1/schema/?format=json").json()
    docs = client.get("/api/v1/docs/")

    assert {"/api/v1/recommendations/", "/api/v1/events/", "/api/v1/identify/"} <= set(
        schema["paths"]
    )
    parameters = {
        p["name"] for p in schema["paths"]["/api/v1/recommendations/"]["get"]["parameters"]
    }
    assert {"placement", "user", "k", "item", "key"} <= parameters
    assert docs.status_code == 200
