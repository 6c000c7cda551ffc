"""Hostile payloads on `POST /api/v1/events/` (`events_ingest`).

Batches mix well-formed events with fields of the wrong type or shape: any JSON value at any
nesting, strings with NUL, lone surrogates and line separators, huge and non-finite numbers,
booleans as ids, unknown fields, events that are not objects at all; bodies that are not JSON,
not UTF-8, too deep, too large. The properties:

- the answer is 200, 400 or 413, never a 500;
- accepted + duplicates + rejected is the number of events sent, and each rejected event has
  one error naming its index and a field it has (or `event`);
- the interactions stored are exactly the accepted ones, and rejected events write nothing
  (no interaction, no anonymous profile, no event type);
- sending the same batch again accepts nothing new (events without a timestamp or an id are
  new events each time, by design: they are left out of that check).
"""

import json
import math
import time

import pytest
from hypothesis import event as label
from hypothesis import given, note
from hypothesis import strategies as st

from recommendations.models import EndUser, Interaction
from recommendations.services.events import EVENT_FIELDS
from tests.factories import EndUserFactory, ItemFactory
from tests.hostile.conftest import example_rolled_back, hostile, row_counts

pytestmark = pytest.mark.django_db

URL = "/api/v1/events/"
ITEMS = ("i-0", "i-1", "42")
NOW = int(time.time())
BATCH_LIMIT, PUBLIC_BATCH_LIMIT, BODY_LIMIT = 15, 8, 64 * 1024


# Values

UNSTORABLE = ["\x00", "\ud800", "\udfff"]  # NUL and lone surrogates: no database keeps them


def unstorable(text: str) -> bool:
    return any(character in UNSTORABLE or "\ud800" <= character <= "\udfff" for character in text)


def hostile_text(max_size: int = 12) -> st.SearchStrategy[str]:
    return st.text(
        st.characters() | st.sampled_from([*UNSTORABLE, "\u2028", "\ufeff", "\u202e", "'", '"']),
        max_size=max_size,
    )


def hostile_integers() -> st.SearchStrategy[int]:
    return st.integers() | st.sampled_from([10**400, -(10**400), 2**63, 2**64])


def hostile_floats() -> st.SearchStrategy[float]:
    return st.floats(allow_nan=True, allow_infinity=True)


JSON_LEAVES = st.none() | st.booleans() | hostile_integers() | hostile_floats() | hostile_text()
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(hostile_text(6), children, max_size=4)
    ),
    max_leaves=12,
)
ISO_TIMES = st.integers(0, NOW).map(
    lambda seconds: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
)
IMPOSSIBLE_TIMES = st.sampled_from(
    ["2021-02-30T00:00:00", "2021-01-01T00:00:00+25:00", "9999-12-31T23:59:59-05:00"]
)

GOOD = {
    "user_id": st.sampled_from(["u-0", "visitor-1", " visitor-2 ", "ü-3", 42, -7]),
    "item_id": st.sampled_from([*ITEMS, 42, " i-1 "]),
    "event_type": st.sampled_from(["view", "click", "purchase", "impression", "rating"]),
    "event_value": st.none() | st.integers(-(10**6), 10**6) | st.floats(-1e9, 1e9),
    "timestamp": st.integers(0, NOW) | ISO_TIMES | st.integers(0, NOW).map(str),
    "event_id": st.sampled_from(["e-1", "e-2", " e-3 ", 99, "ü"]),
    "context": st.dictionaries(hostile_text(5), st.integers() | hostile_text(8), max_size=3),
}
WRONG = {
    "user_id": st.sampled_from(["", "   ", "x" * 256, True, 1.5, None]) | JSON_VALUES,
    "item_id": st.sampled_from(["", "nope", "x" * 256, False, 2.0]) | JSON_VALUES,
    "event_type": st.sampled_from(["", "VIEW", "view ", "unknown", None]) | JSON_VALUES,
    "event_value": st.sampled_from([math.nan, math.inf, -math.inf, "abc", True, [1], {}])
    | JSON_VALUES,
    "timestamp": st.sampled_from(
        [-1, 1e20, math.nan, math.inf, "yesterday", "NaN", True, NOW + 3 * 86400, [NOW]]
    )
    | st.just(10**400)
    | IMPOSSIBLE_TIMES
    | JSON_VALUES,
    "event_id": st.sampled_from(["x" * 256, True, 1.5, [], {"a": 1}]) | JSON_VALUES,
    "context": st.sampled_from([[1], "text", 5, True]) | JSON_VALUES,
}


@st.composite
def events(draw) -> object:
    """One event: mostly an object with each field good, wrong or absent; sometimes any JSON."""
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON_VALUES)
    event = {}
    for name in GOOD:
        choice = draw(st.sampled_from(["good"] * 5 + ["wrong", "absent"]))
        if name in ("user_id", "item_id", "event_type") and choice == "absent":
            choice = draw(st.sampled_from(["good", "absent"]))
        if choice != "absent":
            event[name] = draw(GOOD[name] if choice == "good" else WRONG[name])
    if draw(st.integers(0, 7)) == 0:
        key = draw(hostile_text(10).filter(lambda k: k not in EVENT_FIELDS))
        event[key] = draw(JSON_VALUES)
    return event


def new_events(draw_events: list) -> bool:
    """Whether any event is new on every request: no id and no timestamp (then `now`)."""
    return any(
        isinstance(event, dict)
        and event.get("event_id") in (None, "")
        and event.get("timestamp") in (None, "")
        for event in draw_events
    )


def encode(body: object, style: str) -> bytes:
    if style == "ascii":
        return json.dumps(body).encode()
    # Raw characters, lone surrogates written as the bytes they would be (json.loads reads
    # bytes with "surrogatepass", so they reach the API as lone surrogates).
    return json.dumps(body, ensure_ascii=False).encode("utf-8", errors="surrogatepass")


# Fixtures


@pytest.fixture
def limits(settings):
    settings.EVENTS_MAX_BATCH = BATCH_LIMIT
    settings.EVENTS_MAX_BATCH_PUBLIC = PUBLIC_BATCH_LIMIT
    settings.EVENTS_MAX_BODY_BYTES = BODY_LIMIT


@pytest.fixture
def catalogue(db):
    EndUserFactory(external_id="u-0")
    for external_id in ITEMS:
        ItemFactory(external_id=external_id)


@pytest.fixture
def clients(secret_client, public_client):
    return {"secret": secret_client, "public": public_client}


def post(client, data: bytes, content_type: str = "application/json"):
    return client.generic("POST", URL, data, content_type=content_type)


def clean_id(value) -> str | None:
    if value is None or isinstance(value, bool | dict | list | float):
        return None
    return str(value).strip() or None


def check_answer(events_sent: list, response, counts: dict, users_before: set) -> dict:
    """The properties of one answer to a batch the API read; returns the answer."""
    assert response.status_code in (200, 400), response.content[:500]
    answer = response.json()
    assert set(answer) == {"accepted", "duplicates", "rejected", "errors"}, answer
    assert answer["accepted"] + answer["duplicates"] + answer["rejected"] == len(events_sent)
    assert response.status_code == (400 if answer["rejected"] else 200)
    errors = answer["errors"]
    assert len(errors) == answer["rejected"]
    indexes = [error["index"] for error in errors]
    assert len(set(indexes)) == len(indexes), "an event rejected twice"
    for error in errors:
        event = events_sent[error["index"]]
        fields = {"event"} | (set(event) if isinstance(event, dict) else set())
        assert error["field"] in fields | EVENT_FIELDS, error
        if error["field"] == "event":  # the event as a whole: not an object, or a bad key
            assert not isinstance(event, dict) or any(map(unstorable, event)), error
        assert isinstance(error["message"], str) and error["message"].strip(), error
    after = row_counts()
    stored = after["recommendations.Interaction"] - counts["recommendations.Interaction"]
    assert stored == answer["accepted"], "stored interactions differ from accepted"
    for table in ("recommendations.Item", "recommendations.EventType"):
        assert after[table] == counts[table], f"{table} written from events"
    rejected = set(indexes)
    kept_users = {
        clean_id(event.get("user_id"))
        for index, event in enumerate(events_sent)
        if index not in rejected and isinstance(event, dict)
    }
    created = set(EndUser.objects.values_list("external_id", flat=True)) - users_before
    assert created <= kept_users, f"profiles created from rejected events: {created - kept_users}"
    assert not EndUser.objects.filter(external_id__in=created, is_anonymous=False).exists()
    return answer


# The properties


@hostile(60)
@given(
    batch=st.lists(events(), min_size=1, max_size=10),
    key=st.sampled_from(["secret", "public"]),
    envelope=st.booleans(),
    style=st.sampled_from(["ascii", "raw"]),
    content_type=st.sampled_from(["application/json", "text/plain", ""]),
)
def test_any_batch_gets_counted_answers_and_stores_exactly_the_accepted_events(
    batch, key, envelope, style, content_type, clients, catalogue, limits
):
    client = clients[key]
    body = {"events": batch} if envelope else batch
    data = encode(body, style)
    note(f"body: {data[:2000]!r}")
    limit = PUBLIC_BATCH_LIMIT if key == "public" else BATCH_LIMIT
    with example_rolled_back():
        counts = row_counts()
        users_before = set(EndUser.objects.values_list("external_id", flat=True))
        response = post(client, data, content_type)
        if len(batch) > limit or len(data) > BODY_LIMIT:
            assert response.status_code == 413
            assert row_counts() == counts
            return
        answer = check_answer(batch, response, counts, users_before)
        label("some accepted" if answer["accepted"] else "none accepted")
        label("some rejected" if answer["rejected"] else "none rejected")
        source = Interaction.Source.WIDGET if key == "public" else Interaction.Source.API
        assert set(Interaction.objects.values_list("source", flat=True)) <= {source}

        counts = row_counts()
        users_before = set(EndUser.objects.values_list("external_id", flat=True))
        again = post(client, data, content_type)
        replay = check_answer(batch, again, counts, users_before)
        assert replay["rejected"] == answer["rejected"]
        assert replay["errors"] == answer["errors"]
        if not new_events(batch):
            assert replay["accepted"] == 0, "a replayed batch stored events again"


BODIES = st.one_of(
    st.binary(max_size=200),
    JSON_VALUES.filter(lambda value: not isinstance(value, list) or not value).map(
        lambda value: json.dumps(value).encode()
    ),
    st.just(b""),
    st.just(b"[]"),
    st.just(b'{"events": []}'),
    st.just(b'{"events": {}}'),
    st.sampled_from(["[", "[{]", '[{"user_id": "u-0",}]', "NaN", "[1,]"]).map(str.encode),
    st.integers(16, 40).map(lambda n: json.dumps([{"user_id": "u-0"}] * n).encode()),
    st.integers(BODY_LIMIT + 1, BODY_LIMIT + 3000).map(lambda n: b"[" + b" " * n + b"]"),
    st.sampled_from([10_000, 200_000]).map(lambda depth: b"[" * depth + b"]" * depth),
    st.sampled_from([4301, 10_000]).map(lambda digits: b"[" + b"7" * digits + b"]"),
)


@hostile(60)
@given(data=BODIES, key=st.sampled_from(["secret", "public"]))
def test_a_body_that_is_not_a_batch_is_refused_whole(data, key, clients, catalogue, limits):
    note(f"body: {data[:300]!r}")
    with example_rolled_back():
        counts = row_counts()
        response = post(clients[key], data)
        assert response.status_code in (200, 400, 413), response.content[:300]
        answer = response.json()
        if "message" in answer:  # refused whole
            assert response.status_code in (400, 413)
            assert isinstance(answer["message"], str) and answer["message"].strip()
            assert row_counts() == counts
        else:  # it was a batch after all
            payload = json.loads(data)
            batch = payload["events"] if isinstance(payload, dict) else payload
            check_answer(batch, response, counts, set())


def test_an_oversized_batch_is_413_and_writes_nothing(clients, catalogue, limits):
    batch = [{"user_id": "u-0", "item_id": "i-0", "event_type": "view"}]
    counts = row_counts()
    too_many = {"secret": BATCH_LIMIT + 1, "public": PUBLIC_BATCH_LIMIT + 1}
    for key, size in too_many.items():
        response = post(clients[key], json.dumps(batch * size).encode())
        assert response.status_code == 413
        assert "limit" in response.json()["message"]
    assert row_counts() == counts


# Regression tests for what the properties found


def _one(client, **fields):
    event = {"user_id": "u-0", "item_id": "i-0", "event_type": "view", "timestamp": 1_700_000_000}
    event.update(fields)
    return post(client, json.dumps([event]).encode())


def _assert_rejected(response, *fields: str) -> None:
    assert response.status_code == 400, response.content[:300]
    answer = response.json()
    assert answer["rejected"] == 1 and answer["errors"][0]["field"] in fields, answer


UNSTORABLE_FIELDS = [
    ("event", {"\ud800": 1}),  # an unknown field: its name came back in the error, a 500
    ("user_id", "u\x00"),
    ("user_id", "u\ud800"),
    ("item_id", "i\udfff"),
    ("event_id", "e\x00"),
    ("event_id", "e\ud800"),
    ("context", {"page": "a\x00b"}),
    ("context", {"k\x00": 1}),
    ("context", {"page": "\ud800"}),
    ("context", {"score": math.nan}),
    ("context", {"deep": [{"x": math.inf}]}),
]


@pytest.mark.parametrize(("field", "value"), UNSTORABLE_FIELDS)
def test_text_no_database_can_store_is_a_rejected_field(secret_client, catalogue, field, value):
    """NUL and lone surrogates (and NaN/Infinity in a context) passed validation, then raised
    UnicodeEncodeError (any database) or DataError (PostgreSQL): a 500."""
    counts = row_counts()
    if field == "event":  # field names of their own
        _assert_rejected(_one(secret_client, **value), "event", *value)
    else:
        _assert_rejected(_one(secret_client, **{field: value}), field)
    assert row_counts() == counts


@pytest.mark.parametrize("field", ["anonymous_id", "user_id"])
@pytest.mark.parametrize("text", UNSTORABLE, ids=["nul", "high-surrogate", "low-surrogate"])
def test_identify_rejects_ids_no_database_can_store(secret_client, catalogue, field, text):
    """identify shares external_id_clean: a lone surrogate raised UnicodeEncodeError (any
    database), a NUL a DataError on PostgreSQL."""
    body = {"anonymous_id": "visitor-1", "user_id": "u-9", field: f"id{text}"}
    response = secret_client.generic(
        "POST", "/api/v1/identify/", json.dumps(body).encode(), content_type="application/json"
    )
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_an_item_id_with_nul_is_an_unknown_item(secret_client, catalogue):
    """SQLite finds no such item; PostgreSQL refused the query itself (DataError): a 500."""
    counts = row_counts()
    _assert_rejected(_one(secret_client, item_id="i-0\x00"), "item_id")
    assert row_counts() == counts


@pytest.mark.parametrize("value", [10**400, -(10**400)], ids=["1e400", "-1e400"])
def test_an_event_value_beyond_float_is_a_rejected_field(secret_client, catalogue, value):
    """float(10**400) raises OverflowError, which event_value_clean did not catch: a 500."""
    _assert_rejected(_one(secret_client, event_value=value), "event_value")


@pytest.mark.parametrize(
    "value",
    [
        10**400,
        "2021-02-30T00:00:00",
        "2021-01-01T00:00:00+25:00",
        "9999-12-31T23:59:59-05:00",
        "0001-01-01T00:00:00+05:00",
    ],
    ids=["1e400", "feb-30", "offset-25h", "past-9999", "before-1"],
)
def test_an_impossible_timestamp_is_a_rejected_field(secret_client, catalogue, value):
    """timestamp_parse let OverflowError (a huge number, a date past year 9999 in UTC) and
    Django's ValueError (a well-formed impossible date or offset) through: a 500."""
    _assert_rejected(_one(secret_client, timestamp=value), "timestamp")


@pytest.mark.parametrize(
    "data",
    [b"[" * 100_000 + b"]" * 100_000, b"[" + b"7" * 5000 + b"]"],
    ids=["nested-100k-deep", "integer-of-5000-digits"],
)
@pytest.mark.parametrize("url", [URL, "/api/v1/identify/"])
def test_json_python_cannot_read_is_a_400(secret_client, data, url):
    """json.loads raises RecursionError on deep nesting and ValueError on integers of more
    than 4,300 digits, neither a JSONDecodeError: _json_body let them through as 500s."""
    response = secret_client.generic("POST", url, data, content_type="application/json")
    assert response.status_code == 400
    assert "JSON" in response.json()["message"]


def test_an_unknown_field_is_named_whole(secret_client, catalogue):
    """The error's field came from splitting "field: reason" at the first ': ', so a field
    named 'a: b' was reported as 'a'."""
    response = _one(secret_client, **{"a: b": 1})
    _assert_rejected(response, "a: b")
