import re

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse

from recommendations.models import ApiKey
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


def test_revoke_action_deactivates_keys(admin_client):
    from recommendations.services.api_keys import api_key_create

    api_key, raw_key = api_key_create(name="old", kind="secret")
    admin_client.post(
        reverse("admin:recommendations_apikey_changelist"),
        {"action": "revoke", "_selected_action": [api_key.pk]},
    )
    assert api_key_authenticate(raw_key=raw_key) is None
