"""Clicks on website widget links: the same redirect, recorded with their placement."""

import pytest
from django.utils import timezone

from bulletins.models import Click, Conversion
from recommendations.models import Placement, PlacementVariant
from recommendations.services.events import events_ingest
from recsite import tokens
from tests.factories import EndUserFactory, ItemFactory

pytestmark = pytest.mark.django_db

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


@pytest.fixture
def shown(db):
    user = EndUserFactory(external_id="reader")
    item = ItemFactory(external_id="guide", url="https://shop.example/guide?ref=home")
    placement = Placement.objects.get(slug="for-you")
    token = tokens.widget_click_token(placement.pk, user.pk, 2, item.external_id, "inhouse")
    return user, item, placement, f"/r/{token}"


def test_a_widget_click_redirects_to_the_item_and_records_its_placement(client, shown):
    user, item, placement, path = shown

    response = client.get(path, HTTP_USER_AGENT=BROWSER)

    assert response.status_code == 302
    assert response["Location"] == "https://shop.example/guide?ref=home"  # no UTM on-site
    click = Click.objects.get()
    assert click.channel == Click.Channel.WIDGET and click.delivery is None
    assert (click.user, click.placement, click.item) == (user, placement, item)
    assert (click.position, click.source, click.is_human, click.is_first) == (
        2, "inhouse", True, True
    )  # fmt: skip


def test_a_repeated_widget_click_counts_once_and_a_scanner_not_at_all(client, shown):
    _, _, _, path = shown
    client.get(path, HTTP_USER_AGENT=BROWSER)
    client.get(path, HTTP_USER_AGENT=BROWSER)
    client.get(path, HTTP_USER_AGENT="python-requests/2.32")

    assert Click.objects.filter(is_first=True).count() == 1
    assert Click.objects.filter(is_human=False).count() == 1


def test_a_tampered_widget_token_gets_the_friendly_page(client, shown):
    _, _, _, path = shown
    body, signature = path.removeprefix("/r/").split(".")
    forged = tokens.widget_click_token(999, 1, 1, "guide", "inhouse").split(".")[0]

    for bad in (f"/r/{body}.{signature[::-1]}", f"/r/{forged}.{signature}"):
        response = client.get(bad, HTTP_USER_AGENT=BROWSER)
        assert response.status_code == 404 and "Location" not in response
    assert not Click.objects.exists()


def test_a_conversion_after_a_widget_click_is_attributed_to_its_placement(
    client, shown, django_capture_on_commit_callbacks
):
    user, item, placement, path = shown
    client.get(path, HTTP_USER_AGENT=BROWSER)

    with django_capture_on_commit_callbacks(execute=True):
        events_ingest(
            events=[
                {
                    "user_id": user.external_id,
                    "item_id": item.external_id,
                    "event_type": "signup",
                    "event_id": "signup-1",
                    "timestamp": timezone.now().isoformat(),
                }
            ]
        )

    conversion = Conversion.objects.get()
    assert conversion.channel == Click.Channel.WIDGET
    assert conversion.placement == placement and conversion.run is None
    assert (conversion.position, conversion.source) == (2, "inhouse")


# Experiment arms


def arm_click_path(user, item, placement, variant_id) -> str:
    token = tokens.widget_click_token(
        placement.pk, user.pk, 1, item.external_id, "trending", variant_id
    )
    return f"/r/{token}"


def test_a_widget_click_records_the_arm_its_link_names(client, shown):
    user, item, placement, _ = shown
    holdout = PlacementVariant.objects.create(
        placement=placement, name="holdout", share=100, source="trending", is_control=True
    )

    client.get(arm_click_path(user, item, placement, holdout.pk), HTTP_USER_AGENT=BROWSER)

    assert Click.objects.get().placement_variant == holdout


def test_an_arm_of_another_placement_is_not_recorded(client, shown):
    user, item, placement, _ = shown
    other = Placement.objects.create(slug="sidebar", name="Sidebar")
    foreign = PlacementVariant.objects.create(
        placement=other, name="holdout", share=100, is_control=True
    )

    for variant_id in (foreign.pk, 987654):  # another placement's arm; no arm at all
        client.get(arm_click_path(user, item, placement, variant_id), HTTP_USER_AGENT=BROWSER)

    assert Click.objects.count() == 2
    assert not Click.objects.exclude(placement_variant=None).exists()
    assert set(Click.objects.values_list("placement", flat=True)) == {placement.pk}


def test_a_conversion_after_a_widget_click_carries_its_arm(
    client, shown, django_capture_on_commit_callbacks
):
    user, item, placement, _ = shown
    model = PlacementVariant.objects.create(
        placement=placement, name="model", share=100, is_control=True
    )
    client.get(arm_click_path(user, item, placement, model.pk), HTTP_USER_AGENT=BROWSER)

    with django_capture_on_commit_callbacks(execute=True):
        events_ingest(
            events=[
                {
                    "user_id": user.external_id,
                    "item_id": item.external_id,
                    "event_type": "purchase",
                    "event_id": "order-1",
                    "timestamp": timezone.now().isoformat(),
                }
            ]
        )

    conversion = Conversion.objects.get()
    assert (conversion.placement, conversion.placement_variant) == (placement, model)
