import re
from html import escape

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse

from recommendations.models import ApiKey, Placement, PlacementVariant
from recommendations.roles import MARKETERS, marketers_group_sync
from recommendations.services.api_keys import api_key_authenticate
from tests.factories import InteractionFactory

pytestmark = pytest.mark.django_db

MODELS = ["enduser", "item", "eventtype", "interaction", "apikey"]


@pytest.fixture
def marketer(client):
    user = User.objects.create_user("marketer", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=MARKETERS))
    client.force_login(user)
    return client


def test_every_model_has_a_working_changelist_search_and_add_page(admin_client):
    InteractionFactory()
    for model in MODELS:
        changelist = reverse(f"admin:recommendations_{model}_changelist")
        assert admin_client.get(changelist).status_code == 200, model
        assert admin_client.get(changelist, {"q": "x"}).status_code == 200, model
        assert admin_client.get(reverse(f"admin:recommendations_{model}_add")).status_code == 200


def test_marketers_group_exists_after_migrate_and_sync_is_idempotent():
    before = set(Group.objects.get(name=MARKETERS).permissions.values_list("codename", flat=True))
    marketers_group_sync()
    after = set(Group.objects.get(name=MARKETERS).permissions.values_list("codename", flat=True))
    assert before == after
    assert "view_item" in after


@pytest.mark.parametrize("model", ["enduser", "item", "interaction", "eventtype"])
def test_marketer_reads_data_but_cannot_change_it(marketer, model):
    InteractionFactory()
    assert marketer.get(reverse(f"admin:recommendations_{model}_changelist")).status_code == 200
    assert marketer.get(reverse(f"admin:recommendations_{model}_add")).status_code == 403


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:recommendations_apikey_changelist",
        "admin:auth_user_changelist",
        "admin:auth_group_changelist",
    ],
)
def test_marketer_cannot_see_api_keys_or_staff_accounts(marketer, url_name):
    assert marketer.get(reverse(url_name)).status_code == 403


def test_api_key_created_in_admin_is_shown_once_and_works(admin_client):
    response = admin_client.post(
        reverse("admin:recommendations_apikey_add"),
        {
            "name": "website",
            "kind": "public",
            "allowed_origins": '["https://example.com"]',
            "is_active": "on",
        },
        follow=True,
    )
    assert response.status_code == 200
    [raw_key] = re.findall(r"rs_pk_[\w-]{40,}", response.content.decode())
    assert api_key_authenticate(raw_key=raw_key) == ApiKey.objects.get(name="website")
    assert (
        raw_key
        not in admin_client.get(reverse("admin:recommendations_apikey_changelist")).content.decode()
    )


def test_a_public_keys_page_shows_the_widget_snippet_a_secret_keys_never_the_key(admin_client):
    from recommendations.services.api_keys import api_key_create

    public, public_raw = api_key_create(name="site", kind="public")
    secret, secret_raw = api_key_create(name="backend", kind="secret")

    public_page = admin_client.get(
        reverse("admin:recommendations_apikey_change", args=[public.pk])
    ).content.decode()
    secret_page = admin_client.get(
        reverse("admin:recommendations_apikey_change", args=[secret.pk])
    ).content.decode()

    assert escape(f'data-key="{public_raw}"') in public_page and "widget.js" in public_page
    assert secret_raw not in secret_page and "widget.js" not in secret_page


def test_revoke_action_deactivates_keys(admin_client):
    from recommendations.services.api_keys import api_key_create

    api_key, raw_key = api_key_create(name="old", kind="secret")
    admin_client.post(
        reverse("admin:recommendations_apikey_changelist"),
        {"action": "revoke", "_selected_action": [api_key.pk]},
    )
    assert api_key_authenticate(raw_key=raw_key) is None


# A placement's experiment arms, edited inline


def placement_form(placement, arms, saved=()):
    """The placement's change form POST with `arms` (name, share, source, is_control); the
    first `len(saved)` of them edit those saved arms."""
    data = {
        "slug": placement.slug,
        "name": placement.name,
        "strategy": placement.strategy,
        "count": str(placement.count),
        "source": placement.source,
        "personalize_share": str(placement.personalize_share),
        "fallback_order": placement.fallback_order,
        "window_days": str(placement.window_days),
        "item_list": "[]",
        "is_active": "on",
        "rules-TOTAL_FORMS": "0",
        "rules-INITIAL_FORMS": "0",
        "variants-TOTAL_FORMS": str(len(arms)),
        "variants-INITIAL_FORMS": str(len(saved)),
        "_save": "Save",
    }
    for index, (name, share, source, is_control) in enumerate(arms):
        data[f"variants-{index}-name"] = name
        data[f"variants-{index}-share"] = str(share)
        data[f"variants-{index}-source"] = source
        if is_control:
            data[f"variants-{index}-is_control"] = "on"
        if index < len(saved):
            data[f"variants-{index}-id"] = str(saved[index].pk)
            data[f"variants-{index}-placement"] = str(placement.pk)
    return data


@pytest.fixture
def for_you():
    return Placement.objects.get(slug="for-you")


def change_url(placement) -> str:
    return reverse("admin:recommendations_placement_change", args=[placement.pk])


def test_placement_arms_are_saved_from_the_inline(admin_client, for_you):
    arms = [("holdout", 20, "trending", True), ("model", 50, "inhouse", False)]
    arms.append(("personalize", 30, "personalize", False))

    response = admin_client.post(change_url(for_you), placement_form(for_you, arms))

    assert response.status_code == 302
    assert list(for_you.variants.values_list("name", "share", "source", "is_control")) == [
        ("holdout", 20, "trending", True),
        ("model", 50, "inhouse", False),
        ("personalize", 30, "personalize", False),
    ]


@pytest.mark.parametrize(
    ("arms", "message"),
    [
        (
            [("a", 50, "inhouse", True), ("b", 30, "trending", False)],
            "Arm shares add up to 80; they must add up to 100.",
        ),
        (
            [("a", 50, "inhouse", True), ("b", 50, "trending", True)],
            "Only one arm can be the control.",
        ),
        (
            [("a", 50, "inhouse", False), ("b", 50, "trending", False)],
            "Mark one arm as the control: the one the others are compared to.",
        ),
    ],
    ids=["shares-not-100", "two-controls", "no-control"],
)
def test_placement_arms_need_shares_of_100_and_exactly_one_control(
    admin_client, for_you, arms, message
):
    response = admin_client.post(change_url(for_you), placement_form(for_you, arms))

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not PlacementVariant.objects.exists()


def test_a_placement_without_arms_saves(admin_client, for_you):
    response = admin_client.post(change_url(for_you), placement_form(for_you, []))

    assert response.status_code == 302
    assert not for_you.variants.exists()


def test_the_control_can_move_to_another_arm_in_one_save(admin_client, for_you):
    """The database allows one control per placement: the arm giving it up goes first."""
    model = PlacementVariant.objects.create(placement=for_you, name="model", share=50)
    holdout = PlacementVariant.objects.create(
        placement=for_you, name="holdout", share=50, source="trending", is_control=True
    )
    arms = [("model", 50, "placement", True), ("holdout", 50, "trending", False)]

    response = admin_client.post(
        change_url(for_you), placement_form(for_you, arms, saved=[model, holdout])
    )

    assert response.status_code == 302
    assert list(for_you.variants.values_list("name", "is_control")) == [
        ("model", True),
        ("holdout", False),
    ]


def test_placement_list_links_to_its_widget_engagement_report(admin_client, for_you):
    response = admin_client.get(reverse("admin:recommendations_placement_changelist"))

    report = reverse("admin:bulletins_widgetengagement_change", args=[for_you.pk])
    assert report in response.content.decode()


def test_the_placement_page_has_preview_comparison_and_report_buttons(admin_client, for_you):
    page = admin_client.get(change_url(for_you)).content.decode()

    assert reverse("admin:recommendations_placement_preview", args=[for_you.pk]) in page
    assert reverse("admin:recommendations_placement_compare", args=[for_you.pk]) in page
    assert reverse("admin:bulletins_widgetengagement_change", args=[for_you.pk]) in page
