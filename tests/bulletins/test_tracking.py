"""Clicks, opens and conversions from real requests to the public links."""

import datetime as dt

import pytest
from django.utils import timezone

from bulletins.models import Click, Conversion, Delivery, Open
from bulletins.services.attribution import conversions_backfill
from bulletins.services.runs import bulletin_run_in_process, bulletin_run_start
from recommendations.models import EventType, Interaction, Item
from recommendations.services.events import events_ingest
from recsite import tokens

pytestmark = pytest.mark.django_db

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


@pytest.fixture
def delivery(weekly, mailbox):
    run, _ = bulletin_run_start(bulletin=weekly)
    bulletin_run_in_process(run=run)
    delivery = Delivery.objects.filter(run=run).select_related("user").first()
    Delivery.objects.filter(pk=delivery.pk).update(sent_at=timezone.now() - dt.timedelta(hours=1))
    delivery.refresh_from_db()
    return delivery


def click(client, delivery, position=1, agent=BROWSER, method="get"):
    entry = delivery.items[position - 1]
    token = tokens.click_token(delivery.pk, entry["position"], entry["item_id"])
    return getattr(client, method)(f"/r/{token}", HTTP_USER_AGENT=agent)


@pytest.fixture
def ingest(django_capture_on_commit_callbacks):
    """The events API's service, with what it runs after commit (the attribution)."""

    def ingest(events):
        with django_capture_on_commit_callbacks(execute=True):
            events_ingest(events=events)

    return ingest


def conversion_event(delivery, event_id="order-1", at=None, event_type="purchase"):
    entry = delivery.items[0]
    return {
        "user_id": delivery.user.external_id,
        "item_id": entry["item_id"],
        "event_type": event_type,
        "event_id": event_id,
        "timestamp": (at or timezone.now()).isoformat(),
    }


def test_a_human_click_is_recorded_with_what_it_came_from(client, delivery):
    click(client, delivery, position=2)

    recorded = Click.objects.get()
    entry = delivery.items[1]
    assert recorded.is_human and recorded.is_first and not recorded.bot_reason
    assert recorded.user_id == delivery.user_id
    assert (recorded.run_id, recorded.variant_id) == (delivery.run_id, delivery.variant_id)
    assert recorded.position == 2 and recorded.source == entry["source"]
    assert recorded.placement.slug == entry["placement"]
    assert recorded.item == Item.objects.get(external_id=entry["item_id"])
    assert recorded.ip_hash and "127.0.0.1" not in recorded.ip_hash


def test_repeated_clicks_on_one_link_count_once(client, delivery):
    click(client, delivery)
    Click.objects.update(created_at=timezone.now() - dt.timedelta(minutes=5))
    click(client, delivery)

    assert Click.objects.filter(is_human=True).count() == 2
    assert Click.objects.filter(is_first=True).count() == 1


def test_a_scanner_following_every_link_at_once_is_a_machine(client, delivery):
    for position in (1, 2, 3, 4):
        click(client, delivery, position=position)

    assert not Click.objects.filter(is_human=True).exists()
    assert set(Click.objects.values_list("bot_reason", flat=True)) >= {
        "3 hits on one email within 2 s"
    }


def test_a_click_right_after_sending_is_a_machine(client, delivery):
    Delivery.objects.filter(pk=delivery.pk).update(sent_at=timezone.now())

    click(client, delivery)

    assert Click.objects.get().bot_reason == "within 10 s of sending"


def test_a_link_scanner_agent_is_a_machine(client, delivery):
    click(client, delivery, agent="Mozilla/5.0 (compatible; Mimecast-URL-Protect)")

    assert Click.objects.get().bot_reason == "link scanner or preview agent"


def test_opens_are_deduplicated_and_scanned_opens_flagged(client, delivery):
    path = f"/o/{tokens.open_token(delivery.pk)}.gif"
    client.get(path, HTTP_USER_AGENT=BROWSER)
    client.get(path, HTTP_USER_AGENT=BROWSER)
    client.get(path, HTTP_USER_AGENT="GoogleImageProxy")

    assert Open.objects.filter(is_human=True).count() == 2
    assert Open.objects.filter(is_first=True).count() == 1
    assert Open.objects.get(is_human=False).bot_reason == "link scanner or preview agent"


def test_a_conversion_after_a_click_is_attributed_to_the_last_human_click(client, delivery, ingest):
    click(client, delivery, position=1)
    Click.objects.update(created_at=timezone.now() - dt.timedelta(days=2))
    click(client, delivery, position=3)
    click(client, delivery, position=2, agent="curl/8.0")  # a machine's, later: not it

    ingest([conversion_event(delivery)])

    conversion = Conversion.objects.get()
    assert conversion.click.position == 3
    assert (conversion.run_id, conversion.variant_id) == (delivery.run_id, delivery.variant_id)
    assert conversion.source == delivery.items[2]["source"]
    assert conversion.position == 3 and conversion.event_type == "purchase"


def test_a_conversion_outside_the_window_is_not_attributed(client, delivery, ingest):
    click(client, delivery)
    Click.objects.update(created_at=timezone.now() - dt.timedelta(days=8))

    ingest([conversion_event(delivery)])

    assert not Conversion.objects.exists()


def test_the_window_is_set_per_conversion_type(client, delivery, ingest):
    EventType.objects.filter(name="purchase").update(attribution_window_days=30)
    click(client, delivery)
    Click.objects.update(created_at=timezone.now() - dt.timedelta(days=8))

    ingest([conversion_event(delivery)])

    assert Conversion.objects.count() == 1


def test_a_conversion_before_the_click_or_of_a_plain_event_is_not_attributed(
    client, delivery, ingest
):
    click(client, delivery)
    before = timezone.now() - dt.timedelta(hours=2)

    ingest([conversion_event(delivery, at=before)])
    ingest([conversion_event(delivery, event_id="view-1", event_type="view")])

    assert not Conversion.objects.exists()


def test_an_event_is_attributed_once_however_often_it_comes(client, delivery, ingest):
    click(client, delivery)

    ingest([conversion_event(delivery)])
    ingest([conversion_event(delivery)])  # a replay: a duplicate event
    assert conversions_backfill(days=30) == 0

    assert Conversion.objects.count() == 1


def test_backfill_attributes_conversions_that_came_another_way(client, delivery):
    click(client, delivery)
    event = conversion_event(delivery, event_id="imported-1")
    Interaction.objects.create(
        event_id=event["event_id"],
        user=delivery.user,
        item=Item.objects.get(external_id=event["item_id"]),
        event_type=EventType.objects.get(name="purchase"),
        timestamp=timezone.now(),
        source=Interaction.Source.IMPORT,
    )

    assert conversions_backfill(days=30) == 1
    assert Conversion.objects.get().interaction.event_id == "imported-1"
