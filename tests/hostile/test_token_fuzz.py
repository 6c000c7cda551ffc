"""Fuzzed and tampered tokens on the public links: click `/r/<token>`, open `/o/<token>.gif`,
unsubscribe `/u/<token>` (GET, POST and RFC 8058 one-click POST).

Tokens tried: random text, base64-looking pairs, path traversal, URL-looking strings, header
injection, very long and non-ASCII strings; real tokens with one character changed, cut,
padded, re-cased or with another token's signature; real tokens of one kind on another
kind's link; and payloads of any shape signed with the module's own functions (so the
server's payload validation is tested, not only the signature). Items of the email and
widget links point at `javascript:`, `data:`, protocol-relative and relative URLs too.

Properties: never a 500; a redirect only to the http(s) URL stored for the item the token
names (never to one the request chose); nothing written (no Click, Open or Unsubscribe row)
for a rejected token; the pixel answers every request with the GIF.
"""

import datetime as dt
import json
from urllib.parse import quote, unquote, urlsplit

import pytest
from django.test import Client
from django.utils import timezone
from django.utils.encoding import iri_to_uri
from hypothesis import assume, given, note
from hypothesis import event as label
from hypothesis import strategies as st

from bulletins.models import Bulletin, BulletinRun, Click, Delivery, Open, Unsubscribe
from recommendations.models import EndUser, Item, Placement
from recsite import tokens
from tests.hostile.conftest import example_rolled_back, hostile

pytestmark = pytest.mark.django_db

# Item URLs as a catalogue could hold them (some only through the database, not the import).
ITEM_URLS = {
    "web": "https://shop.example/guide?ref=mail",
    "plain-http": "http://blog.example/post/7",
    "idn": "https://bücher.example/straße",
    "javascript": "javascript:alert(document.cookie)",
    "spaced-javascript": " javascript:alert(1)",
    "tabbed-javascript": "java\tscript:alert(1)",
    "upper-javascript": "JAVASCRIPT:alert(1)",
    "data": "data:text/html,<script>alert(1)</script>",
    "protocol-relative": "//evil.example/phish",
    "backslashes": "\\\\evil.example/phish",
    "relative": "/local/path",
    "empty": "",
    "ftp": "ftp://files.example/a",
    "header-injection": "https://shop.example/a\r\nSet-Cookie: session=evil",
}
WEB_SCHEMES = {"http", "https"}
ENDPOINTS = ["click", "click-head", "open", "open-head", "unsub-get", "unsub-post", "one-click"]
SEPARATE_URLS = [
    "../../etc/passwd",
    "..%2F..%2Fadmin%2F",
    "%2e%2e/%2e%2e/admin/",
    "https://evil.example",
    "//evil.example/x",
    "\\\\evil.example",
    "javascript:alert(1)",
    "%0d%0aLocation:%20https://evil.example",
    "\r\nLocation: https://evil.example",
    "a.b.c",
    ".",
    "..",
    "....",
    "%00",
    "\x00.\x00",
    "ü.ß",
    "🙂.🙂",
    "A" * 10_000 + "." + "B" * 16,
    "e30." + "A" * 16,
]


class Links:
    """One sent email with an entry per item URL, a widget placement and valid tokens."""

    def __init__(self) -> None:
        self.user = EndUser.objects.create(external_id="reader", email="reader@example.com")
        self.placement = Placement.objects.get(slug="for-you")
        bulletin = Bulletin.objects.create(slug="weekly", name="Weekly", subject_template="Hi")
        run = BulletinRun.objects.create(bulletin=bulletin, run_key="hostile")
        self.items = {}
        entries = []
        for position, (name, url) in enumerate(ITEM_URLS.items(), start=1):
            self.items[name] = Item.objects.create(external_id=f"item-{name}", url=url)
            entries.append(
                {
                    "item_id": f"item-{name}",
                    "position": position,
                    "block": 1,
                    "placement": "for-you",
                    "source": "inhouse",
                }
            )
        self.delivery = Delivery.objects.create(
            run=run,
            user=self.user,
            email=self.user.email,
            items=entries,
            status=Delivery.Status.SENT,
            sent_at=timezone.now() - dt.timedelta(hours=1),
        )
        self.entries = entries
        self.valid = {
            "click": [
                tokens.click_token(self.delivery.pk, e["position"], e["item_id"]) for e in entries
            ],
            "widget": [
                tokens.widget_click_token(
                    self.placement.pk, self.user.pk, 1, f"item-{name}", "inhouse"
                )
                for name in ITEM_URLS
            ],
            "open": [tokens.open_token(self.delivery.pk)],
            "unsubscribe": [tokens.unsubscribe_token(self.delivery.pk)],
        }

    def all_valid(self) -> list[str]:
        return [token for kind in self.valid.values() for token in kind]


@pytest.fixture
def links(db) -> Links:
    return Links()


@pytest.fixture
def browser() -> Client:
    return Client(HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Firefox/128.0")


def path_of(endpoint: str, token: str) -> str:
    quoted = quote(token, safe="")
    if endpoint.startswith("click"):
        return f"/r/{quoted}"
    if endpoint.startswith("open"):
        return f"/o/{quoted}.gif"
    return f"/u/{quoted}"


def hit(client: Client, endpoint: str, token: str):
    path = path_of(endpoint, token)
    if endpoint in ("click-head", "open-head"):
        return client.head(path)
    if endpoint == "unsub-post":
        return client.post(path, {"scope": "all"})
    if endpoint == "one-click":
        return client.post(
            path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
        )
    return client.get(path)


def tracked_counts() -> tuple[int, int, int]:
    return Click.objects.count(), Open.objects.count(), Unsubscribe.objects.count()


def assert_rejected(endpoint: str, token: str, response) -> None:
    """What a token that is not valid for `endpoint` gets: the friendly 404 page (a plain 404
    where the URL router cannot even match it), or the pixel, and no redirect."""
    assert response.status_code != 500
    if endpoint.startswith("open"):
        routable = token and "/" not in token
        assert response.status_code == (200 if routable else 404)
        if routable:
            assert response["Content-Type"] == "image/gif"
    else:
        assert response.status_code == 404, (endpoint, response.status_code)
        assert "Location" not in response


def web_url_parts(url: str) -> tuple[str, str, str]:
    """Scheme, host and path, compared as a browser would follow them: percent-encoding
    undone, and the tabs and line breaks a URL parser drops dropped."""
    parts = urlsplit(iri_to_uri(url))
    path = unquote(parts.path)
    for character in "\t\r\n":
        path = path.replace(character, "")
    return parts.scheme.lower(), parts.netloc.lower(), path


def assert_redirect_to_stored_item(response, item_external_id: str) -> None:
    """A redirect goes to the http(s) URL stored for the item the token names, nothing else."""
    item = Item.objects.get(external_id=item_external_id)
    assert urlsplit(item.url).scheme.lower() in WEB_SCHEMES, f"redirected to {item.url!r}"
    location = response["Location"]
    assert web_url_parts(location) == web_url_parts(item.url), (location, item.url)
    assert "\n" not in location and "\r" not in location


# Random and malformed tokens

RANDOM_TOKENS = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=40),
    st.from_regex(r"[A-Za-z0-9_=-]{0,40}\.[A-Za-z0-9_=-]{0,24}", fullmatch=True),
    st.sampled_from(SEPARATE_URLS),
    st.builds(
        lambda n, c: c * n, st.integers(1_000, 20_000), st.sampled_from(["A", ".", "%", "é"])
    ),
)


@hostile(80)
@given(token=RANDOM_TOKENS, endpoint=st.sampled_from(ENDPOINTS))
def test_random_tokens_are_refused_and_change_nothing(token, endpoint, links, browser):
    with example_rolled_back():
        before = tracked_counts()
        response = hit(browser, endpoint, token)
        assert_rejected(endpoint, token, response)
        assert tracked_counts() == before


# Real tokens, tampered


def tamper(token: str, how: str, index: int, other: str) -> str:
    body, signature = token.split(".")
    if how == "flip-signature":
        i = index % len(signature)
        return f"{body}.{signature[:i]}{'B' if signature[i] == 'A' else 'A'}{signature[i + 1 :]}"
    if how == "flip-body":
        i = index % len(body)
        return f"{body[:i]}{'B' if body[i] == 'A' else 'A'}{body[i + 1 :]}.{signature}"
    if how == "cut":
        return token[: index % len(token)]
    if how == "extend":
        return token + "A" * (1 + index % 5)
    if how == "pad":
        return f"{body}==.{signature}"
    if how == "swap-signature":
        return f"{body}.{other.split('.')[1]}"
    if how == "swap-body":
        return f"{other.split('.')[0]}.{signature}"
    if how == "recase":
        return token.swapcase()
    if how == "no-signature":
        return f"{body}."
    if how == "two-dots":
        return f"{body}.{signature}.{signature}"
    if how == "standard-base64":
        return token.replace("-", "+").replace("_", "/")
    raise AssertionError(how)


TAMPERINGS = [
    "flip-signature",
    "flip-body",
    "cut",
    "extend",
    "pad",
    "swap-signature",
    "swap-body",
    "recase",
    "no-signature",
    "two-dots",
    "standard-base64",
]


@hostile(80)
@given(
    choice=st.integers(0, 10_000),
    other_choice=st.integers(0, 10_000),
    how=st.sampled_from(TAMPERINGS),
    index=st.integers(0, 200),
    endpoint=st.sampled_from(ENDPOINTS),
)
def test_tampered_tokens_are_refused_and_change_nothing(
    choice, other_choice, how, index, endpoint, links, browser
):
    valid = links.all_valid()
    token = valid[choice % len(valid)]
    tampered = tamper(token, how, index, valid[other_choice % len(valid)])
    assume(tampered not in valid)
    note(f"{how}: {token} -> {tampered}")
    with example_rolled_back():
        before = tracked_counts()
        response = hit(browser, endpoint, tampered)
        assert_rejected(endpoint, tampered, response)
        assert tracked_counts() == before


CROSS_KIND = [
    ("click", "open"),
    ("click", "unsub-get"),
    ("click", "unsub-post"),
    ("click", "one-click"),
    ("widget", "open"),
    ("widget", "unsub-post"),
    ("widget", "one-click"),
    ("open", "click"),
    ("open", "unsub-post"),
    ("open", "one-click"),
    ("unsubscribe", "click"),
    ("unsubscribe", "click-head"),
    ("unsubscribe", "open"),
]


@pytest.mark.parametrize(("kind", "endpoint"), CROSS_KIND)
def test_a_token_of_one_kind_is_refused_on_another_kinds_link(kind, endpoint, links, browser):
    before = tracked_counts()
    for token in links.valid[kind]:
        assert_rejected(endpoint, token, hit(browser, endpoint, token))
    assert tracked_counts() == before


# Payloads of any shape, signed


JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([2**63, -(2**63) - 1, 10**30, -1, 0, 32767, 32768, 65536])
    | st.floats()
    | st.text(st.characters(exclude_categories=("Cs",)), max_size=10)
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=4), children)
    ),
    max_leaves=10,
)


@st.composite
def payloads(draw, kind: str, links_ids: dict) -> list | object:
    """A payload for `kind`: any JSON, or a list of the right length mixing real ids with
    values of the wrong type."""
    width = len(tokens.KINDS[kind])
    shape = draw(st.sampled_from(["any", "right-length", "right-length", "plausible"]))
    if shape == "any":
        return draw(JSON_VALUES)
    if shape == "right-length":
        return draw(st.lists(JSON_VALUES, min_size=width, max_size=width))
    real = {
        tokens.CLICK: [links_ids["delivery"], links_ids["position"], links_ids["item"]],
        tokens.WIDGET_CLICK: [
            links_ids["placement"],
            links_ids["user"],
            1,
            links_ids["item"],
            "inhouse",
            0,
        ],
        tokens.OPEN: [links_ids["delivery"]],
        tokens.UNSUBSCRIBE: [links_ids["delivery"]],
    }[kind]
    values = list(real)
    for index in draw(st.sets(st.integers(0, width - 1), max_size=width)):
        values[index] = draw(JSON_VALUES)
    return values


def signed(kind: str, values) -> str:
    return tokens._token_make(kind, values)


KIND_ENDPOINTS = {
    tokens.CLICK: ["click", "click-head"],
    tokens.WIDGET_CLICK: ["click", "click-head"],
    tokens.OPEN: ["open", "open-head"],
    tokens.UNSUBSCRIBE: ["unsub-get", "unsub-post", "one-click"],
}


@hostile(120)
@given(data=st.data(), kind=st.sampled_from(sorted(tokens.KINDS)))
def test_signed_payloads_of_any_shape_never_crash_or_misdirect(data, kind, links, browser):
    ids = {
        "delivery": links.delivery.pk,
        "position": data.draw(st.sampled_from([e["position"] for e in links.entries])),
        "item": data.draw(st.sampled_from([e["item_id"] for e in links.entries])),
        "placement": links.placement.pk,
        "user": links.user.pk,
    }
    values = data.draw(payloads(kind, ids), label="payload")
    endpoint = data.draw(st.sampled_from(KIND_ENDPOINTS[kind]), label="endpoint")
    token = signed(kind, values)
    with example_rolled_back():
        clicks, opens, unsubscribes = tracked_counts()
        response = hit(browser, endpoint, token)
        assert response.status_code != 500
        after = tracked_counts()
        wrote = after != (clicks, opens, unsubscribes)
        label(f"{endpoint}: {response.status_code}, {'wrote' if wrote else 'nothing'}")
        if endpoint.startswith("click"):
            if response.status_code == 302:
                assert after == (clicks + 1, opens, unsubscribes)
                payload = dict(zip(tokens.KINDS[kind], values, strict=True))
                assert_redirect_to_stored_item(response, str(payload["item_id"]))
            else:
                assert response.status_code == 404
                assert after == (clicks, opens, unsubscribes)
        elif endpoint.startswith("open"):
            assert response.status_code == 200 and response["Content-Type"] == "image/gif"
            assert after[0] == clicks and after[2] == unsubscribes
            if after[1] != opens:
                assert after[1] == opens + 1 and endpoint == "open"
                assert values == [links.delivery.pk]
        else:
            assert response.status_code in (200, 404)
            assert after[:2] == (clicks, opens)
            if after[2] != unsubscribes:
                assert endpoint != "unsub-get", "a GET unsubscribed"
                assert values == [links.delivery.pk]


# Item URLs that are not web addresses


@pytest.mark.parametrize("kind", ["click", "widget"])
@pytest.mark.parametrize("name", list(ITEM_URLS))
def test_a_click_redirects_only_to_the_items_own_web_url(kind, name, links, browser):
    position = list(ITEM_URLS).index(name)
    token = links.valid[kind][position]
    before = tracked_counts()
    response = hit(browser, "click", token)
    url = ITEM_URLS[name]
    if urlsplit(url).scheme.lower() in WEB_SCHEMES:
        assert response.status_code == 302, response.status_code
        assert_redirect_to_stored_item(response, f"item-{name}")
        assert tracked_counts()[0] == before[0] + 1
    else:
        assert response.status_code == 404, (url, response.status_code, response.get("Location"))
        assert tracked_counts() == before


# Regression tests for what the fuzzing found


WIDGET_PAYLOADS = {
    "placement-as-text": ["x", 0, 1, "item-web", "inhouse", 0],
    "placement-as-list": [[1], 0, 1, "item-web", "inhouse", 0],
    "negative-position": [None, 0, -1, "item-web", "inhouse", 0],
    "position-past-smallint": [None, 0, 2**63, "item-web", "inhouse", 0],
    "nul-in-source": [None, 0, 1, "item-web", "in\x00house", 0],
    "nul-in-item": [None, 0, 1, "item-web\x00", "inhouse", 0],
    "surrogate-in-source": [None, 0, 1, "item-web", "in\ud800", 0],
    "surrogate-in-item": [None, 0, 1, "item-\udfff", "inhouse", 0],
}


@pytest.mark.parametrize("name", WIDGET_PAYLOADS)
def test_a_signed_widget_payload_of_the_wrong_type_is_refused(name, links, browser):
    """Fields of a widget token went to the database unchecked: a text placement id raised
    ValueError, a list TypeError, a negative or oversized position an IntegrityError or
    DataError, a NUL a DataError on PostgreSQL. The signature needs the secret key, so only
    our own bug could send these, but the link must answer 404, not 500."""
    values = list(WIDGET_PAYLOADS[name])
    if values[0] is None:
        values[0] = links.placement.pk
    before = tracked_counts()
    response = Client(raise_request_exception=False).get(
        f"/r/{signed(tokens.WIDGET_CLICK, values)}"
    )
    assert response.status_code == 404
    assert tracked_counts() == before


@pytest.mark.parametrize("endpoint", ["click", "open", "unsub-get"])
def test_a_signed_body_nested_too_deep_is_refused(endpoint, links):
    """json.loads raises RecursionError, which token_read did not catch: a 500 (needs the
    secret key to sign)."""
    kind = {"click": tokens.CLICK, "open": tokens.OPEN, "unsub-get": tokens.UNSUBSCRIBE}[endpoint]
    body = tokens._b64encode(b"[" * 50_000 + b"]" * 50_000)
    token = f"{body}.{tokens._signature(kind, body)}"
    response = hit(Client(raise_request_exception=False), endpoint, token)
    assert response.status_code in (200, 404)


def test_a_valid_unsubscribe_token_unsubscribes_once(links, browser):
    token = links.valid["unsubscribe"][0]
    assert hit(browser, "unsub-get", token).status_code == 200
    assert not Unsubscribe.objects.exists()  # a GET never unsubscribes
    for _ in range(2):
        assert hit(browser, "one-click", token).status_code == 200
    assert Unsubscribe.objects.count() == 1


def test_tokens_stay_printable_json(links):
    """The payload format the fuzzing relies on: base64url JSON, a dot, 16 characters."""
    body, signature = links.valid["click"][0].split(".")
    assert json.loads(tokens._b64decode(body))[0] == links.delivery.pk
    assert len(signature) == 16
