"""A bulletin run delivered through Django's SMTP backend to a real SMTP server (aiosmtpd on
loopback), with the MIME of what arrived checked."""

import re
from email import message_from_bytes, policy
from html import unescape

import pytest

from bulletins.models import BulletinRun, Delivery
from bulletins.rendering import GMAIL_CLIP_BYTES
from bulletins.services.runs import bulletin_run_in_process, bulletin_run_start
from recommendations.models import EndUser, Item

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(weekly, smtp_server, settings):
    settings.EMAIL_PLATFORM = {"name": "smtp"}
    settings.PUBLIC_BASE_URL = "https://news.example.com"
    settings.DEFAULT_FROM_EMAIL = "Weekly <news@example.com>"
    run, _ = bulletin_run_start(bulletin=weekly)
    return bulletin_run_in_process(run=run, wait_for_retries=False), smtp_server


def test_every_recipient_gets_one_mime_email_with_both_parts_and_headers(sent):
    run, inbox = sent
    eligible = EndUser.objects.filter(is_anonymous=False, email_opt_in=True).exclude(email="")

    assert run.status == BulletinRun.Status.DONE
    recipients = [rcpt for rcpts, _ in inbox.received for rcpt in rcpts]
    assert sorted(recipients) == sorted(eligible.values_list("email", flat=True))

    delivery = Delivery.objects.filter(run=run).select_related("user").first()
    raw = next(raw for rcpts, raw in inbox.received if rcpts == [delivery.email])
    mime = message_from_bytes(raw, policy=policy.default)
    assert mime["From"] == "Weekly <news@example.com>"
    assert mime["To"] == delivery.email
    assert mime["Subject"] == "Hi, your week"
    assert mime["Message-ID"] == delivery.message_id == f"<{delivery.pk}.recsite@example.com>"
    assert mime["X-Recsite-Delivery"] == str(delivery.pk)
    assert re.fullmatch(r"<https://news\.example\.com/u/[\w.-]+>", mime["List-Unsubscribe"])
    assert mime["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mime.get_content_type() == "multipart/alternative"
    text_part, html_part = mime.iter_parts()
    assert text_part.get_content_type() == "text/plain"
    assert html_part.get_content_type() == "text/html"
    html = html_part.get_content()
    assert "Picked for you" in text_part.get_content() and "Picked for you" in html
    # The transfer adds CRLF line ends: the size is the one rendered, within them.
    assert abs(len(html.encode()) - delivery.size_bytes) <= html.count("\n") + 1
    assert delivery.size_bytes < GMAIL_CLIP_BYTES


def test_every_item_link_is_tracked_in_both_parts(sent, client):
    run, inbox = sent
    delivery = Delivery.objects.filter(run=run).first()
    raw = next(raw for rcpts, raw in inbox.received if rcpts == [delivery.email])
    text_part, html_part = message_from_bytes(raw, policy=policy.default).iter_parts()
    html, text = html_part.get_content(), text_part.get_content()
    items = Item.objects.filter(external_id__in=[e["item_id"] for e in delivery.items])

    for item in items:
        assert item.url not in html and item.url not in text  # only tracked links
        assert unescape(item.title) in unescape(html) and item.title in text
    tracked = set(re.findall(r'href="(https://news\.example\.com/r/[\w.-]+)"', html))
    assert len(tracked) == len(delivery.items) == 7
    assert tracked == set(re.findall(r"https://news\.example\.com/r/[\w.-]+", text))
    assert re.search(r'<img src="https://news\.example\.com/o/[\w.-]+\.gif"', html)
    images = re.findall(r"<img [^>]*>", html)
    assert images and all(re.search(r'alt="[^"]*"', image) for image in images)

    first = sorted(tracked)[0]
    response = client.get(first.removeprefix("https://news.example.com"))
    assert response.status_code == 302
    assert response["Location"].split("?")[0] in {item.url for item in items}


def test_a_soft_bounce_is_retried_and_a_hard_bounce_fails(weekly, smtp_server, settings):
    settings.EMAIL_PLATFORM = {"name": "smtp"}
    settings.BULLETIN_RETRY_SECONDS = 0
    soft, hard = EndUser.objects.filter(email_opt_in=True, is_anonymous=False)[:2]
    EndUser.objects.filter(pk=soft.pk).update(email="soft@example.com")
    EndUser.objects.filter(pk=hard.pk).update(email="hard@example.com")
    run, _ = bulletin_run_start(bulletin=weekly)

    run = bulletin_run_in_process(run=run, wait_for_retries=False)

    soft_delivery = Delivery.objects.get(run=run, user=soft)
    hard_delivery = Delivery.objects.get(run=run, user=hard)
    assert hard_delivery.status == Delivery.Status.FAILED and "550" in hard_delivery.error
    assert soft_delivery.status == Delivery.Status.FAILED
    assert soft_delivery.attempts == settings.BULLETIN_MAX_ATTEMPTS
    assert "450" in soft_delivery.error
    received = [rcpt for rcpts, _ in smtp_server.received for rcpt in rcpts]
    assert "soft@example.com" not in received and len(received) == run.sent
