"""The public links in every email (click, open pixel, unsubscribe) and the Connected Content
API, through the real test client, on deliveries of a run that was really sent."""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from bulletins.models import BulletinRun, Click, Delivery, Open, Unsubscribe
from bulletins.services.runs import bulletin_run_in_process, bulletin_run_start
from recommendations.models import Item
from recommendations.services.api_keys import api_key_create
from recsite import tokens

pytestmark = pytest.mark.django_db

INVALID_PAGE = "This link does not work"
ONE_CLICK = "List-Unsubscribe=One-Click"
FORM = "application/x-www-form-urlencoded"


def send(bulletin):
    run, _ = bulletin_run_start(bulletin=bulletin)
    return bulletin_run_in_process(run=run, wait_for_retries=False)


@pytest.fixture
def delivery(weekly, mailbox):
    run = send(weekly)
    return Delivery.objects.filter(run=run, status=Delivery.Status.SENT).order_by("pk").first()


def first_entry(delivery):
    return delivery.items[0]


def click_path(delivery, position=None, item_id=None):
    entry = first_entry(delivery)
    position = entry["position"] if position is None else position
    item_id = entry["item_id"] if item_id is None else item_id
    return f"/r/{tokens.click_token(delivery.pk, position, item_id)}"


def flipped(text: str, index: int) -> str:
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1 :]


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


# Click redirect


def test_click_records_the_click_and_redirects_to_the_item_with_utm(client, delivery):
    entry = first_entry(delivery)
    item = Item.objects.get(external_id=entry["item_id"])

    response = client.get(click_path(delivery), HTTP_USER_AGENT="Mail/1.0")

    assert response.status_code == 302
    target = response["Location"]
    assert target.startswith(item.url + "?")
    run = delivery.run
    assert query_of(target) == {
        "utm_source": [run.bulletin.slug],
        "utm_medium": ["email"],
        "utm_campaign": [f"{run.bulletin.slug}-run{run.pk}"],
        "utm_content": [f"p{entry['position']}-{entry['source']}"],
    }
    click = Click.objects.get()
    assert (click.delivery, click.item, click.position) == (delivery, item, entry["position"])
    assert click.user_agent == "Mail/1.0"


def test_click_keeps_the_item_urls_own_query_and_replaces_its_utm(client, delivery):
    item = Item.objects.get(external_id=first_entry(delivery)["item_id"])
    item.url = "https://pub.example/story?id=7&utm_source=old&utm_campaign=old"
    item.save()

    response = client.get(click_path(delivery))

    target = response["Location"]
    assert target.startswith("https://pub.example/story?")
    query = query_of(target)
    assert query["id"] == ["7"]
    assert query["utm_source"] == [delivery.run.bulletin.slug]
    assert query["utm_campaign"] == [f"{delivery.run.bulletin.slug}-run{delivery.run_id}"]


def test_extra_parameters_in_the_request_never_change_the_target(client, delivery):
    item = Item.objects.get(external_id=first_entry(delivery)["item_id"])

    response = client.get(
        click_path(delivery),
        {"next": "https://evil.example/", "url": "https://evil.example/", "utm_source": "evil"},
    )

    assert response.status_code == 302
    assert response["Location"].startswith(item.url + "?")
    assert "evil" not in response["Location"]


def test_head_follows_the_link_and_counts_as_a_machine(client, delivery):
    item = Item.objects.get(external_id=first_entry(delivery)["item_id"])

    response = client.head(click_path(delivery))

    assert response.status_code == 302
    assert response["Location"].startswith(item.url + "?")
    click = Click.objects.get()
    assert not click.is_human and click.bot_reason == "HEAD request"


def _bad_click_paths(delivery):
    item_id = first_entry(delivery)["item_id"]
    body, signature = tokens.click_token(delivery.pk, 1, item_id).split(".")
    other_item = delivery.items[1]["item_id"]
    return {
        "tampered signature": f"/r/{body}.{flipped(signature, 3)}",
        "tampered body": f"/r/{flipped(body, 2)}.{signature}",
        "not a token": "/r/hello",
        "open token": f"/r/{tokens.open_token(delivery.pk)}",
        "unsubscribe token": f"/r/{tokens.unsubscribe_token(delivery.pk)}",
        "unknown delivery": f"/r/{tokens.click_token(delivery.pk + 10_000, 1, item_id)}",
        "position not in the delivery": click_path(delivery, position=99),
        "item not at that position": click_path(delivery, position=1, item_id=other_item),
        "item not in the delivery": click_path(delivery, item_id="no-such-item"),
    }


def test_bad_click_link_gets_the_friendly_page_and_no_redirect_or_click(client, delivery, subtests):
    for case, path in _bad_click_paths(delivery).items():
        with subtests.test(case):
            response = client.get(path, {"next": "https://evil.example/"})

            assert response.status_code == 404
            assert INVALID_PAGE in response.content.decode()
            assert "Location" not in response
            assert not Click.objects.exists()


def test_click_on_an_item_since_removed_gets_the_friendly_page(client, delivery):
    Item.objects.filter(external_id=first_entry(delivery)["item_id"]).delete()

    response = client.get(click_path(delivery))

    assert response.status_code == 404
    assert INVALID_PAGE in response.content.decode()
    assert not Click.objects.exists()


@pytest.mark.parametrize("url", ["javascript:alert(1)", "/story/7", "data:text/html,hi"])
def test_click_on_an_item_without_a_web_address_gets_the_friendly_page(client, delivery, url):
    Item.objects.filter(external_id=first_entry(delivery)["item_id"]).update(url=url)

    response = client.get(click_path(delivery))

    assert response.status_code == 404
    assert "Location" not in response
    assert not Click.objects.exists()


# Open pixel


def test_open_pixel_answers_a_gif_and_records_the_open(client, delivery):
    response = client.get(f"/o/{tokens.open_token(delivery.pk)}.gif", HTTP_USER_AGENT="Mail/1.0")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif"
    assert response.content.startswith(b"GIF89a")
    open_ = Open.objects.get()
    assert (open_.delivery, open_.user_agent) == (delivery, "Mail/1.0")


def test_bad_open_token_still_answers_the_gif_and_records_nothing(client, delivery, subtests):
    bad_tokens = {
        "tampered": flipped(tokens.open_token(delivery.pk), -2),
        "click token": tokens.click_token(delivery.pk, 1, first_entry(delivery)["item_id"]),
        "unknown delivery": tokens.open_token(delivery.pk + 10_000),
    }
    for case, token in bad_tokens.items():
        with subtests.test(case):
            response = client.get(f"/o/{token}.gif")

            assert response.status_code == 200
            assert response["Content-Type"] == "image/gif"
            assert not Open.objects.exists()


# Unsubscribe


def unsubscribe_path(delivery):
    return f"/u/{tokens.unsubscribe_token(delivery.pk)}"


def test_unsubscribe_get_shows_the_form_and_unsubscribes_nobody(client, delivery):
    response = client.get(unsubscribe_path(delivery))

    assert response.status_code == 200
    assert 'name="scope"' in response.content.decode()
    assert delivery.run.bulletin.name in response.content.decode()
    assert not Unsubscribe.objects.exists()


def test_one_click_post_unsubscribes_without_a_csrf_token(delivery):
    client = Client(enforce_csrf_checks=True)

    response = client.post(unsubscribe_path(delivery), ONE_CLICK, content_type=FORM)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    unsubscribe = Unsubscribe.objects.get()
    assert unsubscribe.user_id == delivery.user_id
    assert unsubscribe.bulletin == delivery.run.bulletin
    assert unsubscribe.delivery == delivery
    assert unsubscribe.method == Unsubscribe.Method.ONE_CLICK


def test_one_click_post_twice_keeps_one_unsubscribe(delivery):
    client = Client(enforce_csrf_checks=True)

    first = client.post(unsubscribe_path(delivery), ONE_CLICK, content_type=FORM)
    second = client.post(unsubscribe_path(delivery), ONE_CLICK, content_type=FORM)

    assert (first.status_code, second.status_code) == (200, 200)
    assert Unsubscribe.objects.count() == 1


def test_form_post_unsubscribes_from_the_bulletin_only(client, delivery):
    response = client.post(unsubscribe_path(delivery), {"scope": "bulletin"})

    assert response.status_code == 200
    assert "You are unsubscribed" in response.content.decode()
    unsubscribe = Unsubscribe.objects.get()
    assert unsubscribe.bulletin == delivery.run.bulletin
    assert unsubscribe.method == Unsubscribe.Method.LINK


def test_form_post_with_scope_all_unsubscribes_from_every_bulletin(client, delivery):
    response = client.post(unsubscribe_path(delivery), {"scope": "all"})

    assert response.status_code == 200
    assert "any of our newsletters" in response.content.decode()
    unsubscribe = Unsubscribe.objects.get()
    assert unsubscribe.bulletin is None
    assert unsubscribe.user_id == delivery.user_id


def test_scope_all_posted_twice_keeps_one_unsubscribe(client, delivery):
    client.post(unsubscribe_path(delivery), {"scope": "all"})
    response = client.post(unsubscribe_path(delivery), {"scope": "all"})

    assert response.status_code == 200
    assert Unsubscribe.objects.count() == 1


def test_bad_unsubscribe_token_gets_the_friendly_page_and_unsubscribes_nobody(
    client, delivery, subtests
):
    bad_tokens = {
        "tampered": flipped(tokens.unsubscribe_token(delivery.pk), -2),
        "open token": tokens.open_token(delivery.pk),
        "unknown delivery": tokens.unsubscribe_token(delivery.pk + 10_000),
    }
    for case, token in bad_tokens.items():
        for method in ("get", "post"):
            with subtests.test(f"{method} {case}"):
                response = getattr(client, method)(f"/u/{token}", {"scope": "all"})

                assert response.status_code == 404
                assert INVALID_PAGE in response.content.decode()
                assert not Unsubscribe.objects.exists()


def test_next_run_skips_a_user_who_unsubscribed_by_one_click(client, delivery, mailbox):
    client.post(unsubscribe_path(delivery), ONE_CLICK, content_type=FORM)
    mailbox.clear()

    run = send(delivery.run.bulletin)

    assert run.status == BulletinRun.Status.DONE
    assert run.skipped_unsubscribed == 1
    assert not Delivery.objects.filter(run=run, user_id=delivery.user_id).exists()
    assert delivery.email not in {message.to[0] for message in mailbox}


# Connected Content API


def content_url(delivery, user_id=None):
    user_id = user_id or delivery.user.external_id
    return f"/api/v1/bulletins/{delivery.run.bulletin.slug}/content/{user_id}/"


def bearer(kind):
    _, raw_key = api_key_create(name=f"{kind} key", kind=kind)
    return {"HTTP_AUTHORIZATION": f"Bearer {raw_key}"}


def test_connected_content_answers_the_users_latest_email_with_tracked_links(client, delivery):
    response = client.get(content_url(delivery), **bearer("secret"))

    assert response.status_code == 200
    body = response.json()
    assert {"subject", "html", "text", "delivery_id", "merge"} <= set(body)
    assert body["delivery_id"] == str(delivery.pk)
    assert "https://news.example.com/r/" in body["html"]
    assert Item.objects.get(external_id=first_entry(delivery)["item_id"]).url not in body["html"]


def test_connected_content_refuses_a_public_key(client, delivery):
    response = client.get(content_url(delivery), **bearer("public"))

    assert response.status_code == 403
    assert "message" in response.json()


def test_connected_content_needs_a_key(client, delivery):
    response = client.get(content_url(delivery))

    assert response.status_code == 401
    assert "message" in response.json()


def test_connected_content_for_an_unknown_user_is_a_json_404(client, delivery):
    response = client.get(content_url(delivery, user_id="nobody-here"), **bearer("secret"))

    assert response.status_code == 404
    assert "nobody-here" in response.json()["message"]
