"""The website widget in headless Chromium, on the project's demo page: recommendations
rendered from the API, impressions and clicks reported, the click recorded and a purchase
attributed to it, an anonymous visitor's history carried over on login, and the markup's
accessibility basics."""

import json
import re
import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db.models import F, Value
from django.db.models.functions import Concat

from bulletins.models import Click, Conversion
from recommendations.models import ApiKey, EndUser, Interaction, Item, Placement
from recommendations.services.api_keys import api_key_create

# HeadlessChrome's own user agent reads as a link scanner's (bulletins/machines.py): its
# clicks would be kept out of attribution, as they should be.
PERSON_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/140.0.0.0 Safari/537.36"
)
NOT_LOOPBACK = re.compile(r"^https?://(?!(localhost|127\.0\.0\.1|\[::1\])[:/])")
CONTEXT_KEYS = {"placement", "variant", "position", "source", "request_id"}
UUID4_ID = re.compile(r"anon-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


@pytest.fixture
def visitor(browser):
    """A page in a fresh browser profile, with a person's user agent, that never leaves
    loopback (the synthetic catalogue's images are on example.com)."""
    context = browser.new_context(user_agent=PERSON_AGENT, viewport={"width": 1280, "height": 1000})
    context.route(NOT_LOOPBACK, lambda route: route.abort())
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def demo_site(live_server, settings):
    """The demo page on, tracked links on the live server, and the demo's public key."""
    settings.DEMO_PAGE_ENABLED = True
    settings.PUBLIC_BASE_URL = live_server.url
    api_key, raw_key = api_key_create(
        name="demo", kind=ApiKey.Kind.PUBLIC, allowed_origins=[live_server.url]
    )
    return raw_key


@pytest.fixture
def catalogue_on_site(live_server, demo_site, trained):
    """The planted catalogue with an active model, its item pages on the demo site. Lists
    are not computed ahead: the API computes each on its first request."""
    Item.objects.update(
        url=Concat(Value(f"{live_server.url}/demo/items/"), F("external_id"), Value("/"))
    )
    return trained


@pytest.fixture
def turns(live_server):
    """A lock the live server's requests, and this test's reads, take in turn.

    The widget's beacons and the page's own requests arrive together, and on SQLite in
    memory the server's threads and the test share one connection, which cannot hold two
    transactions at once ("database table is locked")."""
    httpd = live_server.thread.httpd
    app = httpd.get_app()
    lock = threading.Lock()

    def one_at_a_time(environ, start_response):
        with lock:
            return app(environ, start_response)

    httpd.set_app(one_at_a_time)
    yield lock
    httpd.set_app(app)


def _is_recommendations(response) -> bool:
    return "/api/v1/recommendations/" in response.url


def eventually(page, turns, check, timeout: float = 15.0):
    """`check()`'s first truthy answer, polling while the browser's beacons arrive."""
    deadline = time.monotonic() + timeout
    while True:
        with turns:
            answer = check()
        if answer or time.monotonic() > deadline:
            return answer
        page.wait_for_timeout(100)


def test_a_user_sees_their_list_and_a_click_then_a_purchase_is_attributed(
    live_server, visitor, catalogue_on_site, turns
):
    reader = (
        EndUser.objects.filter(is_anonymous=False, interactions__isnull=False)
        .order_by("pk")
        .values_list("external_id", flat=True)
        .first()
    )
    with visitor.expect_response(_is_recommendations) as answered:
        visitor.goto(f"{live_server.url}/demo/?user={reader}")
    assert answered.value.status == 200
    data = answered.value.json()
    assert parse_qs(urlsplit(answered.value.url).query)["user"] == [reader]
    visitor.wait_for_selector("#for-you .recsite__item")

    shown = visitor.locator("#for-you .recsite__name").all_inner_texts()
    assert data["user"] == reader and data["items"]
    assert shown == [item["title"] for item in data["items"]]

    # One impression per item shown, once the list is in view.
    impressions = Interaction.objects.filter(
        event_type__name="impression", user__external_id=reader
    )
    stored = eventually(
        visitor,
        turns,
        lambda: len(found := list(impressions)) == len(data["items"]) and found,
    )
    assert stored, "the impressions were not stored"
    assert {impression.event_id for impression in stored} == {
        f"imp:{data['request_id']}:{item['position']}" for item in data["items"]
    }
    for impression in stored:
        assert set(impression.context) == CONTEXT_KEYS
        assert impression.context["placement"] == "for-you"
        assert impression.context["request_id"] == data["request_id"]

    first = data["items"][0]
    with turns:
        Placement.objects.create(
            slug="more-like-this", name="More like this", strategy="similar_items", count=4
        )
    visitor.click("#for-you .recsite__link >> nth=0")
    visitor.wait_for_url(f"{live_server.url}/demo/items/{first['id']}/")
    visitor.wait_for_selector("#demo-buy")
    # The item page's similar-items list, for the item on the page.
    visitor.wait_for_selector("#similar .recsite__item")
    similar = visitor.locator("#similar .recsite__item").evaluate_all(
        "items => items.map(item => item.dataset.itemId)"
    )
    assert 0 < len(similar) <= 4 and first["id"] not in similar

    click_event = f"clk:{data['request_id']}:{first['position']}"
    views = Interaction.objects.filter(
        event_type__name="view", user__external_id=reader, item__external_id=first["id"]
    )
    # The click's own event, and the view the item page reports.
    assert eventually(
        visitor,
        turns,
        lambda: Interaction.objects.filter(event_id=click_event).exists() and views.exists(),
    )
    with turns:
        click = Click.objects.select_related("user", "item", "placement").get()
    assert click.channel == Click.Channel.WIDGET and click.is_human
    assert click.user.external_id == reader and click.item.external_id == first["id"]
    assert (click.placement.slug, click.position, click.source) == (
        "for-you",
        first["position"],
        first["source"],
    )

    visitor.click("#demo-buy")
    conversion = eventually(
        visitor, turns, lambda: Conversion.objects.select_related("placement").first()
    )
    assert conversion is not None, "the purchase was not attributed"
    assert conversion.click_id == click.pk and conversion.event_type == "purchase"
    assert conversion.channel == Click.Channel.WIDGET
    assert (conversion.placement.slug, conversion.position, conversion.source) == (
        "for-you",
        first["position"],
        first["source"],
    )


def test_an_anonymous_visitors_history_goes_to_the_user_they_log_in_as(
    live_server, visitor, catalogue_on_site, turns
):
    with turns:
        known = EndUser.objects.create(external_id="u-known")
    with visitor.expect_response(_is_recommendations) as answered:
        visitor.goto(f"{live_server.url}/demo/")
    data = answered.value.json()
    visitor.wait_for_selector("#for-you .recsite__item")

    anonymous_id = visitor.evaluate("Recsite.anonymousId()")
    cookies = {cookie["name"]: cookie for cookie in visitor.context.cookies()}
    assert UUID4_ID.fullmatch(anonymous_id)
    assert cookies["rs_aid"]["value"] == anonymous_id and cookies["rs_aid"]["sameSite"] == "Lax"
    assert data["user"] == anonymous_id and data["items"]
    assert visitor.inner_text("#demo-anonymous-id") == anonymous_id

    history = Interaction.objects.filter(user__external_id=anonymous_id)
    shown = len(data["items"])
    assert eventually(visitor, turns, lambda: history.count() == shown)  # impressions
    visitor.evaluate("id => Recsite.track('view', id)", data["items"][0]["id"])
    assert eventually(visitor, turns, lambda: history.count() == shown + 1)
    with turns:
        event_ids = set(history.values_list("event_id", flat=True))

    with visitor.expect_response(_is_recommendations) as again:
        merged = visitor.evaluate("Recsite.identify('u-known')")

    assert merged == {"user_id": "u-known", "merged_events": len(event_ids)}
    with turns:
        assert not EndUser.objects.filter(external_id=anonymous_id).exists()
        assert set(known.interactions.values_list("event_id", flat=True)) == event_ids
    # From then on the widget asks for the known user's list.
    assert again.value.json()["user"] == "u-known"
    visitor.wait_for_selector("#for-you .recsite__item")


def test_the_widget_is_labelled_keyboard_reachable_escaped_and_quiet_on_failure(
    live_server, visitor, demo_site, turns
):
    """The API is stood in for (no catalogue needed): what matters here is the markup."""
    answer = {
        "placement": "for-you",
        "user": "anyone",
        "variant": None,
        "request_id": "0" * 32,
        "items": [
            {
                "id": "a",
                "title": '<img src=x onerror="window.pwned=1">',
                "url": f"{live_server.url}/demo/items/a/",
                "image": "javascript:alert(1)",
                "source": "inhouse",
                "position": 1,
                "explanation": "Because you viewed “B”",
            },
            {"id": "b", "title": "B", "url": "javascript:alert(1)", "position": 2},
            {"id": "c", "title": "C", "url": f"{live_server.url}/demo/items/c/", "position": 3},
        ],
    }
    sent = []

    def recommendations(route):
        if "placement=broken" in route.request.url:
            route.fulfill(status=500, json={"message": "down"})
        else:
            route.fulfill(json=answer)

    def events(route):
        sent.extend(json.loads(route.request.post_data))
        route.fulfill(json={"accepted": 0})

    visitor.route("**/api/v1/recommendations/**", recommendations)
    visitor.route("**/api/v1/events/**", events)
    warnings = []
    visitor.on("console", lambda message: warnings.append(message.text))
    visitor.goto(f"{live_server.url}/demo/")
    widget = visitor.locator("#for-you")
    widget.locator(".recsite__item").first.wait_for()

    section = widget.locator("section")
    heading = section.locator("#" + section.get_attribute("aria-labelledby"))
    assert heading.inner_text() == "For you"
    assert widget.locator("ul[role=list] > li").count() == 2  # the javascript: link is dropped
    assert widget.get_attribute("aria-busy") is None
    assert widget.locator(".recsite__name").first.inner_text() == answer["items"][0]["title"]
    assert widget.locator("img").count() == 0 and not visitor.evaluate("window.pwned")
    assert widget.locator(".recsite__why").first.inner_text() == "Because you viewed “B”"

    for _ in range(10):
        visitor.keyboard.press("Tab")
        if visitor.evaluate("document.activeElement.classList.contains('recsite__link')"):
            break
    focused = visitor.evaluate(
        "(el => [el.textContent, getComputedStyle(el).outlineStyle])(document.activeElement)"
    )
    assert focused == [answer["items"][0]["title"], "solid"]

    assert eventually(visitor, turns, lambda: len(sent) == 2)
    assert {event["event_id"] for event in sent} == {
        "imp:" + "0" * 32 + ":1",
        "imp:" + "0" * 32 + ":3",
    }
    assert all(set(event["context"]) == CONTEXT_KEYS for event in sent)

    # A list added later is picked up; one that fails hides itself and says why in the console.
    visitor.evaluate(
        """() => {
          const el = document.createElement("div");
          el.className = "recsite-widget";
          el.id = "broken";
          el.dataset.placement = "broken";
          document.querySelector("main").append(el);
        }"""
    )
    visitor.locator("#broken").wait_for(state="hidden")
    assert any("recsite: no recommendations for 'broken'" in text for text in warnings)
