"""The recommendations API serving an Amazon Personalize campaign in real time: every
GetRecommendations call through botocore's Stubber (checked against the real service model,
plus the limits the API reference documents), a timeout against a loopback port that never
answers, the in-house list as the fallback, and the source carried through to the click."""

import logging
import socket
import time
from urllib.parse import urlsplit

import boto3
import pandas as pd
import pytest
from botocore.stub import Stubber
from rest_framework.test import APIClient

from bulletins.models import Click
from integrations.personalize import PersonalizeAdapter
from recommendations.models import (
    EndUser,
    Interaction,
    Item,
    ModelVersion,
    Placement,
    PlacementVariant,
    RecommendationSet,
    Rule,
    RuleCondition,
)
from recommendations.services import personalize as personalize_service
from recommendations.services.api_keys import api_key_create
from recommendations.services.personalize import personalize_lists_store
from recommendations.services.recommending import recommendations_compute_all_in_process
from recommendations.services.training import model_version_train
from recsite import tokens

pytestmark = pytest.mark.django_db

CAMPAIGN = "arn:aws:personalize:us-east-1:123456789012:campaign/recsite"
USER = "user-00001"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
URL = f"/api/v1/recommendations/?user={USER}&placement=for-you"


def _get_recommendations_checked(params: dict) -> dict:
    """What the GetRecommendations reference requires of a campaign's request, beyond the
    service model (which leaves every member optional and numResults unbounded above)."""
    assert params.get("campaignArn"), "campaignArn is required for a campaign"
    assert params.get("userId"), "User-Personalization needs the userId"
    assert 1 <= params.get("numResults", 25) <= 500, "numResults is 1 to 500"
    return params


@pytest.fixture
def stored(planted_catalogue, settings):
    """An active in-house model and every user's stored in-house lists; Personalize on."""
    settings.PERSONALIZE_ENABLED = True
    model_version_train()
    recommendations_compute_all_in_process()
    Placement.objects.filter(slug="for-you").update(source=Placement.Source.PERSONALIZE)


@pytest.fixture
def runtime(stored, monkeypatch):
    """The personalize-runtime client behind a Stubber; `calls` lists every request made."""
    client = boto3.session.Session().client(
        "personalize-runtime",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    calls: list[dict] = []
    client.meta.events.register(
        "before-parameter-build.personalize-runtime.GetRecommendations",
        lambda params, **kwargs: calls.append(_get_recommendations_checked(params)),
    )
    adapter = PersonalizeAdapter(runtime=client, region="us-east-1", endpoint_url="")
    monkeypatch.setattr(personalize_service, "personalize_adapter", lambda: adapter)
    with Stubber(client) as stubber:
        stubber.calls = calls
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def campaign(runtime, settings):
    settings.PERSONALIZE_CAMPAIGN_ARN = CAMPAIGN
    return runtime


def _answer(runtime, item_ids: list[str], *, scores: bool = True) -> None:
    """The campaign's answer, as GetRecommendations gives it: `itemList` entries with an
    `itemId` and an optional `score` (User-Personalization scores, some recipes do not),
    best first; and the request it must come with."""
    item_list = [
        {"itemId": item_id, "score": round(0.9 - n / 100, 4)} if scores else {"itemId": item_id}
        for n, item_id in enumerate(item_ids)
    ]
    assert all(entry["itemId"] for entry in item_list)
    runtime.add_response(
        "get_recommendations",
        {"itemList": item_list, "recommendationId": "RID-1"},
        {"campaignArn": CAMPAIGN, "userId": USER, "numResults": 30},  # 3 x count 10
    )


def _unseen_items(user_id: str, n: int) -> list[str]:
    seen = Interaction.objects.filter(user__external_id=user_id).values_list(
        "item__external_id", flat=True
    )
    items = Item.objects.filter(available=True).exclude(external_id__in=list(seen))
    return list(items.order_by("external_id").values_list("external_id", flat=True)[:n])


@pytest.fixture
def server():
    _, key = api_key_create(name="backend", kind="secret")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def _token(url: str) -> dict:
    return tokens.token_read(tokens.WIDGET_CLICK, urlsplit(url).path.removeprefix("/r/"))


def _stored_inhouse(user_id: str = USER) -> list[str]:
    stored = RecommendationSet.objects.get(
        user__external_id=user_id, placement__slug="for-you", source="inhouse"
    )
    return [entry["item_id"] for entry in stored.items]


def test_a_personalize_placement_serves_the_campaigns_list_through_its_rules(campaign, server):
    wanted = _unseen_items(USER, 12)
    rule = Rule.objects.create(
        placement=Placement.objects.get(slug="for-you"), name="Not that one", kind="exclude"
    )
    RuleCondition.objects.create(rule=rule, field="item_id", operator="equals", value=wanted[1])
    _answer(campaign, wanted)

    items = server.get(URL).json()["items"]

    assert [entry["id"] for entry in items] == [wanted[0], *wanted[2:11]]
    assert {entry["source"] for entry in items} == {"personalize"}
    assert {_token(entry["url"])["source"] for entry in items} == {"personalize"}
    assert len(campaign.calls) == 1


def test_the_real_time_answer_is_cached_so_aws_is_asked_once(campaign, server):
    wanted = _unseen_items(USER, 12)
    _answer(campaign, wanted, scores=False)

    first = server.get(URL).json()["items"]
    again = server.get(URL).json()["items"]

    assert [entry["id"] for entry in first] == wanted[:10]  # the campaign's order
    assert [entry["id"] for entry in again] == [entry["id"] for entry in first]
    assert {entry["source"] for entry in again} == {"personalize"}
    assert len(campaign.calls) == 1


def test_an_arm_asking_for_personalize_gets_the_campaigns_list(campaign, server):
    placement = Placement.objects.get(slug="for-you")
    placement.source = Placement.Source.IN_HOUSE
    placement.save()
    PlacementVariant.objects.create(
        placement=placement, name="managed", share=100, source="personalize"
    )
    _answer(campaign, _unseen_items(USER, 12))

    body = server.get(URL).json()

    assert body["variant"] == "managed"
    assert {entry["source"] for entry in body["items"]} == {"personalize"}


def test_a_campaign_error_falls_back_to_the_stored_in_house_list(campaign, server, caplog):
    campaign.add_client_error(
        "get_recommendations", "ResourceNotFoundException", "Campaign not found"
    )

    with caplog.at_level(logging.INFO, logger="recommendations.services.personalize"):
        items = server.get(URL).json()["items"]

    assert [entry["id"] for entry in items] == _stored_inhouse()
    assert {entry["source"] for entry in items} == {"inhouse"}
    assert {_token(entry["url"])["source"] for entry in items} == {"inhouse"}
    assert len(campaign.calls) == 1  # one attempt: no retry on the request path
    fell_back = [r for r in caplog.records if "fell back" in r.getMessage()]
    assert [r.levelno for r in fell_back] == [logging.INFO]


@pytest.fixture
def silent_endpoint():
    """A loopback port whose backlog takes the connection and never answers it."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_a_campaign_slower_than_its_timeout_falls_back_within_the_timeout(
    stored, server, settings, monkeypatch, silent_endpoint
):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    settings.PERSONALIZE_CAMPAIGN_ARN = CAMPAIGN
    settings.PERSONALIZE_REALTIME_TIMEOUT_SECONDS = 0.2
    adapter = PersonalizeAdapter(region="us-east-1", endpoint_url=silent_endpoint)
    monkeypatch.setattr(personalize_service, "personalize_adapter", lambda: adapter)

    started = time.monotonic()
    items = server.get(URL).json()["items"]

    waited = time.monotonic() - started
    assert 0.2 <= waited < 1.5, "the campaign was asked once, and waited for no longer"
    assert [entry["id"] for entry in items] == _stored_inhouse()
    assert {entry["source"] for entry in items} == {"inhouse"}


def _personalize_batch_list(user_id: str, item_ids: list[str]) -> None:
    """A stored Personalize batch list, as a batch run writes it."""
    version = ModelVersion.objects.create(source="personalize", status="ready")
    lists = pd.DataFrame(
        {
            "user_id": user_id,
            "item_id": item_ids,
            "score": [1.0 / (n + 1) for n in range(len(item_ids))],
            "rank": list(range(1, len(item_ids) + 1)),
        }
    )
    personalize_lists_store(recommendations=lists, model_version=version)


@pytest.mark.parametrize(
    ("enabled", "campaign_arn"), [(True, ""), (False, CAMPAIGN)], ids=["no-campaign", "disabled"]
)
def test_without_a_campaign_the_stored_personalize_lists_serve_as_before(
    runtime, server, settings, enabled, campaign_arn
):
    settings.PERSONALIZE_ENABLED = enabled
    settings.PERSONALIZE_CAMPAIGN_ARN = campaign_arn
    batch = _unseen_items(USER, 5)
    _personalize_batch_list(USER, batch)

    items = server.get(URL).json()["items"]

    assert [entry["id"] for entry in items] == batch
    assert {entry["source"] for entry in items} == {"personalize"}
    assert len(runtime.calls) == 0


def test_an_opted_out_user_never_reaches_personalize(campaign, server):
    EndUser.objects.filter(external_id=USER).update(personalization_opt_out=True)

    items = server.get(URL).json()["items"]

    assert items and "personalize" not in {entry["source"] for entry in items}
    assert len(campaign.calls) == 0


def test_a_click_on_a_real_time_item_is_recorded_with_source_personalize(campaign, server, client):
    _answer(campaign, _unseen_items(USER, 12))
    shown = server.get(URL).json()["items"][2]

    response = client.get(urlsplit(shown["url"]).path, HTTP_USER_AGENT=BROWSER)

    assert response.status_code == 302 and response["Location"] == shown["item_url"]
    click = Click.objects.get()
    assert (click.user.external_id, click.placement.slug, click.item.external_id) == (
        USER, "for-you", shown["id"]
    )  # fmt: skip
    assert (click.source, click.position, click.channel) == (
        "personalize", 3, Click.Channel.WIDGET
    )  # fmt: skip
