import base64
import re
from html import unescape

import pytest

from bulletins.rendering import (
    GMAIL_CLIP_BYTES,
    Block,
    EmailTooLarge,
    RenderError,
    bulletin_render,
)
from recsite import tokens
from recsite.tokens import InvalidToken, click_token, open_token, token_read, unsubscribe_token

BASE = "https://news.example.com"
SUBJECT = '{{ user.first_name|default:"there" }}, your picks'


@pytest.fixture(autouse=True)
def _public_base_url(settings):
    settings.PUBLIC_BASE_URL = BASE
    settings.UNSUBSCRIBE_MAILTO = ""


def make_item(position, *, block="a", title=None, **extra):
    item = {
        "item_id": f"{block}{position}",
        "title": title or f"Item {block}{position}",
        "url": f"https://shop.example/p/{block}{position}?utm=x&ref=y",
        "image_url": f"https://img.example/{block}{position}.jpg",
        "description": f"About item {block}{position}.",
        "position": position,
        "source": "hybrid",
    }
    item.update(extra)
    return item


def make_blocks(n_blocks=2, n_items=6):
    return [
        Block(f"Block {b}", [make_item(i, block=f"b{b}") for i in range(1, n_items + 1)])
        for b in range(n_blocks)
    ]


def render(blocks=None, *, user=None, delivery_id=4242, **kwargs):
    return bulletin_render(
        subject_template=kwargs.pop("subject_template", SUBJECT),
        layout_mjml=kwargs.pop("layout_mjml", None),
        blocks=make_blocks() if blocks is None else blocks,
        user={"first_name": "Ann", "email": "ann@example.com", "id": 987654}
        if user is None
        else user,
        delivery_id=delivery_id,
        **kwargs,
    )


def hrefs(html):
    return [unescape(h) for h in re.findall(r'href="([^"]*)"', html)]


# tokens


def test_click_token_round_trips():
    token = click_token(4242, 3, "sku-17")
    assert token_read(tokens.CLICK, token) == {
        "delivery_id": 4242,
        "position": 3,
        "item_id": "sku-17",
    }


def test_open_and_unsubscribe_tokens_round_trip():
    assert token_read(tokens.OPEN, open_token(7)) == {"delivery_id": 7}
    assert token_read(tokens.UNSUBSCRIBE, unsubscribe_token(7)) == {"delivery_id": 7}


def test_tokens_are_url_safe_and_short():
    token = click_token(123456789, 12, 1234567)
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", token)
    assert len(token) < 60


@pytest.mark.parametrize("kind", [tokens.OPEN, tokens.UNSUBSCRIBE])
def test_token_of_another_kind_is_rejected(kind):
    with pytest.raises(InvalidToken):
        token_read(kind, click_token(1, 1, 1))
    with pytest.raises(InvalidToken):
        token_read(
            tokens.CLICK, open_token(1) if kind == tokens.UNSUBSCRIBE else unsubscribe_token(1)
        )


def test_tampered_payload_is_rejected():
    body, signature = unsubscribe_token(5).split(".")
    forged = base64.urlsafe_b64encode(b"[6]").rstrip(b"=").decode()
    with pytest.raises(InvalidToken):
        token_read(tokens.UNSUBSCRIBE, f"{forged}.{signature}")


def test_tampered_signature_is_rejected():
    token = open_token(5)
    last = "A" if token[-1] != "A" else "B"
    with pytest.raises(InvalidToken):
        token_read(tokens.OPEN, token[:-1] + last)


@pytest.mark.parametrize("garbage", ["", ".", "abc", "a.b.c", "!!!.???", "x" * 500, None, 42])
def test_garbage_is_rejected(garbage):
    with pytest.raises(InvalidToken):
        token_read(tokens.CLICK, garbage)


def test_unknown_kind_is_rejected():
    with pytest.raises(InvalidToken):
        token_read("nope", open_token(1))


def test_token_signed_with_another_secret_is_rejected(settings):
    token = open_token(1)
    settings.SECRET_KEY = "another-secret-key-for-this-test-only-0123456789"
    with pytest.raises(InvalidToken):
        token_read(tokens.OPEN, token)


def test_email_and_user_id_never_appear_in_tokens():
    email = render()
    all_tokens = re.findall(r"/(?:r|o|u)/([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)", email.html + email.text)
    assert all_tokens
    for token in all_tokens:
        decoded = base64.urlsafe_b64decode(token.split(".")[0] + "==").decode()
        assert "ann@example.com" not in decoded and "987654" not in decoded


# rendering


def test_every_item_link_is_tracked_and_no_raw_url_is_linked():
    email = render()
    links = hrefs(email.html)
    for block in make_blocks():
        for item in block.items:
            expected = tokens.click_url(4242, item["position"], item["item_id"])
            assert expected in links
            assert item["url"] not in email.html
            assert item["url"] not in email.text
    for link in links:
        assert link.startswith(f"{BASE}/r/") or link.startswith(f"{BASE}/u/")


def test_click_links_read_back_to_their_item():
    email = render()
    clicks = {h for h in hrefs(email.html) if h.startswith(f"{BASE}/r/")}
    read = {
        (p["position"], p["item_id"])
        for p in (token_read(tokens.CLICK, h.rsplit("/", 1)[1]) for h in clicks)
    }
    expected = {(i["position"], i["item_id"]) for b in make_blocks() for i in b.items}
    assert read == expected


def test_open_pixel_is_a_one_pixel_image_with_empty_alt():
    email = render()
    pixel = re.search(rf'<img src="{re.escape(BASE)}/o/([^"]+)\.gif"[^>]*>', email.html)
    assert pixel, "open pixel missing"
    assert 'width="1"' in pixel.group(0) and 'height="1"' in pixel.group(0)
    assert 'alt=""' in pixel.group(0)
    assert token_read(tokens.OPEN, pixel.group(1)) == {"delivery_id": 4242}


def test_unsubscribe_link_in_html_and_text():
    email = render()
    url = tokens.unsubscribe_url(4242)
    assert url in hrefs(email.html)
    assert f"Unsubscribe: {url}" in email.text


def test_every_image_has_alt_text():
    email = render()
    images = re.findall(r"<img\b[^>]*>", email.html)
    assert len(images) == 12 + 1  # item images and the pixel
    for img in images:
        assert re.search(r'\balt="', img), img
    for block in make_blocks():
        for item in block.items:
            assert f'alt="{item["title"]}"' in email.html


def test_item_without_image_renders_without_one():
    blocks = [Block("Only text", [make_item(1, image_url=""), make_item(2, image_url=None)])]
    email = render(blocks)
    assert len(re.findall(r"<img\b", email.html)) == 1  # the pixel only
    assert "Item a1" in email.html and "Item a2" in email.html


def test_text_part_has_the_same_items_with_tracked_urls():
    email = render()
    for block in make_blocks():
        assert block.title in email.text
        for item in block.items:
            assert f"* {item['title']}" in email.text
            assert tokens.click_url(4242, item["position"], item["item_id"]) in email.text
    assert "<" not in email.text


def test_one_click_unsubscribe_headers_per_rfc_8058():
    email = render()
    url = tokens.unsubscribe_url(4242)
    assert url.startswith("https://")
    assert email.headers["List-Unsubscribe"] == f"<{url}>"
    assert email.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_mailto_is_an_optional_second_target(settings):
    settings.UNSUBSCRIBE_MAILTO = "unsubscribe@news.example.com"
    header = render().headers["List-Unsubscribe"]
    first, second = header.split(", ")
    assert first == f"<{tokens.unsubscribe_url(4242)}>"
    assert second.startswith("<mailto:unsubscribe@news.example.com?subject=")


def test_hostile_titles_are_escaped():
    hostile = "Tom & Jerry <script>alert(\"x\")</script> 'quoted' </mj-text></mjml>"
    blocks = [Block("<b>Block</b> & co", [make_item(1, title=hostile, description="<i>x</i> & y")])]
    email = render(blocks)
    assert "<script>" not in email.html
    assert "</mjml>" not in email.html
    assert "<b>Block</b>" not in email.html
    assert "Tom &amp; Jerry &lt;script&gt;" in email.html
    assert hostile in email.text  # plain text keeps the title as it is
    assert "x & y" in email.text


def test_hostile_user_name_is_escaped_in_html():
    email = render(user={"first_name": "<img src=x onerror=alert(1)>"})
    assert "<img src=x" not in email.html
    assert "onerror" in email.subject  # the subject is a header, not HTML


def test_subject_template_uses_user_and_default():
    assert render().subject == "Ann, your picks"
    assert render(user={}).subject == "there, your picks"


def test_subject_is_one_line():
    email = render(subject_template="Hello\r\nBcc: x@y.z {{ user.first_name }}")
    assert "\n" not in email.subject and "\r" not in email.subject


def test_subject_sees_only_plain_user_values():
    class Secret:
        def __str__(self):
            return "leaked"

    email = render(
        subject_template="{{ user.obj }}|{{ user.first_name }}",
        user={"first_name": "Ann", "obj": Secret()},
    )
    assert email.subject == "|Ann"


def test_broken_subject_template_is_a_clear_error():
    with pytest.raises(RenderError, match="subject template"):
        render(subject_template="{% if %}")


def test_invalid_mjml_layout_is_a_clear_error():
    with pytest.raises(RenderError, match="MJML"):
        render(layout_mjml="<mjml><mj-body><mj-section></mj-body></mjml>")


def test_custom_layout_gets_the_same_context():
    layout = (
        "<mjml><mj-body><mj-section><mj-column>"
        "{% for b in blocks %}{% for i in b.items %}"
        '<mj-button href="{{ i.click_url }}">{{ i.title }}</mj-button>'
        "{% endfor %}{% endfor %}"
        '<mj-text><a href="{{ unsubscribe_url }}">stop</a></mj-text>'
        "</mj-column></mj-section></mj-body></mjml>"
    )
    email = render(layout_mjml=layout)
    assert tokens.click_url(4242, 1, "b01") in hrefs(email.html)
    assert tokens.unsubscribe_url(4242) in hrefs(email.html)


def test_size_is_reported_and_a_normal_email_fits():
    email = render()
    assert email.size_bytes == len(email.html.encode("utf-8"))
    assert email.size_bytes < GMAIL_CLIP_BYTES


def test_email_above_102_kb_fails_with_a_clear_message():
    with pytest.raises(EmailTooLarge) as excinfo:
        render(make_blocks(n_blocks=6, n_items=12))
    message = str(excinfo.value)
    assert excinfo.value.size_bytes > GMAIL_CLIP_BYTES
    assert "Gmail clips above 102 KB" in message and "unsubscribe" in message
    assert isinstance(excinfo.value, ValueError)


def test_long_descriptions_are_shortened():
    email = render([Block("B", [make_item(1, description="word " * 500)])])
    assert ("word " * 60) not in email.text
    assert "…" in email.text
