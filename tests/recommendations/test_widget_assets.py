"""The widget's files and the demo page, without a browser (tests/browser/test_widget.py
drives them in Chromium)."""

import gzip
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders

from recommendations.models import ApiKey
from recommendations.services.api_keys import api_key_create
from recommendations.services.demo import demo_origins, demo_widget_key, demo_widget_key_ensure
from tests.factories import ItemFactory

WIDGET_FILES = ["recsite/widget.js", "recsite/widget.css"]
GZIPPED_LIMIT = 10 * 1024


def _asset(name: str) -> bytes:
    path = finders.find(name)
    assert path, f"{name} is not among the static files"
    return Path(path).read_bytes()


def test_widget_script_and_stylesheet_together_are_at_most_10_kb_gzipped():
    together = b"".join(_asset(name) for name in WIDGET_FILES)
    assert len(gzip.compress(together, compresslevel=9)) <= GZIPPED_LIMIT


def test_widget_builds_its_markup_without_inner_html():
    script = _asset("recsite/widget.js").decode()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script


def test_widget_stylesheet_weighs_nothing_against_the_sites_rules():
    rules = [
        line
        for line in _asset("recsite/widget.css").decode().splitlines()
        if line.rstrip().endswith("{") and not line.startswith("@")
    ]
    assert rules and all(line.lstrip().startswith(":where(") for line in rules)


@pytest.mark.django_db
def test_demo_page_is_not_found_when_disabled(client, settings):
    settings.DEMO_PAGE_ENABLED = False
    item = ItemFactory()

    assert client.get("/demo/").status_code == 404
    assert client.get(f"/demo/items/{item.external_id}/").status_code == 404


@pytest.mark.django_db
def test_demo_page_without_a_demo_key_says_how_to_create_one(client, settings):
    settings.DEMO_PAGE_ENABLED = True
    api_key_create(name="backend", kind=ApiKey.Kind.SECRET)

    response = client.get("/demo/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "create_api_key --name demo --kind public --origin http://testserver" in page
    assert "widget.js" not in page


@pytest.mark.django_db
def test_demo_page_embeds_the_newest_demo_key_and_signs_a_user_in(client, settings):
    settings.DEMO_PAGE_ENABLED = True
    api_key_create(name="demo", kind=ApiKey.Kind.PUBLIC, allowed_origins=["http://testserver"])
    newest, raw_key = api_key_create(
        name="demo", kind=ApiKey.Kind.PUBLIC, allowed_origins=["http://testserver"]
    )

    response = client.get("/demo/?user=u-42")

    page = response.content.decode()
    assert f'data-key="{raw_key}" data-user="u-42"' in page
    assert 'class="recsite-widget" id="for-you" data-placement="for-you"' in page
    assert "does not allow" not in page
    assert response.cookies["recsite_demo_user"].value == "u-42"
    # Signed out with ?user=, anonymous again.
    response = client.get("/demo/?user=")
    assert response.cookies["recsite_demo_user"].value == ""
    assert 'data-user="' not in response.content.decode()
    assert demo_widget_key() == newest


@pytest.mark.django_db
def test_demo_page_warns_when_its_origin_is_not_allowed(client, settings):
    settings.DEMO_PAGE_ENABLED = True
    api_key_create(name="demo", kind=ApiKey.Kind.PUBLIC, allowed_origins=["https://elsewhere"])

    page = client.get("/demo/").content.decode()

    assert "http://testserver</code>, which the “demo” key does not allow" in page


@pytest.mark.django_db
def test_demo_item_page_reports_a_view_and_offers_a_purchase(client, settings):
    settings.DEMO_PAGE_ENABLED = True
    api_key_create(name="demo", kind=ApiKey.Kind.PUBLIC, allowed_origins=["http://testserver"])
    item = ItemFactory(title="A <b>bold</b> title")

    page = client.get(f"/demo/items/{item.external_id}/").content.decode()

    assert "A &lt;b&gt;bold&lt;/b&gt; title" in page
    assert '["track", "view", itemId]' in page and 'id="demo-buy"' in page
    assert client.get("/demo/items/no-such-item/").status_code == 404


@pytest.mark.django_db
def test_demo_key_is_created_once_for_the_public_origin_and_its_loopback_twin():
    api_key, created = demo_widget_key_ensure(site_url="http://localhost:8000")
    again, created_again = demo_widget_key_ensure(site_url="http://localhost:8000")

    assert created and not created_again and again == api_key
    assert api_key.kind == ApiKey.Kind.PUBLIC and api_key.published_key.startswith("rs_pk_")
    assert api_key.allowed_origins == ["http://localhost:8000", "http://127.0.0.1:8000"]
    assert demo_origins("https://news.example.com/base/") == ["https://news.example.com"]
