"""What a marketer's walkthrough found: pages that were server errors, and settings that saved
and then broke serving or the nightly refresh."""

import pytest
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.urls import reverse

from recommendations.models import (
    MAX_PLACEMENT_COUNT,
    ModelVersion,
    Placement,
    Segment,
    SegmentCondition,
)
from recommendations.roles import MARKETERS
from recommendations.services.segments import segments_refresh

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketer_client(client):
    user = User.objects.create_user("marketer", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=MARKETERS))
    client.force_login(user)
    return client


def segment_post(client, field: str, value: str = "1"):
    return client.post(
        reverse("admin:recommendations_segment_add"),
        {
            "name": "Readers",
            "slug": "readers",
            "kind": "rules",
            "conditions-TOTAL_FORMS": "1",
            "conditions-INITIAL_FORMS": "0",
            "conditions-0-field": field,
            "conditions-0-operator": "gt",
            "conditions-0-value": value,
        },
    )


@pytest.mark.parametrize("who", ["admin_client", "marketer_client"])
def test_a_learned_segments_page_opens_for_everyone(who, request):
    client = request.getfixturevalue(who)
    segment = Segment.objects.create(slug="learned-0", name="Night owls", kind="learned")

    page = client.get(reverse("admin:recommendations_segment_change", args=[segment.pk]))

    assert page.status_code == 200 and "Night owls" in page.content.decode()


def test_a_segment_condition_on_a_field_no_user_has_is_refused_on_the_field(admin_client):
    response = segment_post(admin_client, "lifetime_value")

    assert response.status_code == 200
    assert "No user has a feature or attribute &#x27;lifetime_value&#x27;" in (
        response.content.decode()
    )
    assert not Segment.objects.exists()


@pytest.mark.parametrize("field", ["events_total", "affinity:other"])
def test_a_segment_condition_on_a_behaviour_feature_saves(admin_client, field):
    assert segment_post(admin_client, field).status_code == 302
    assert Segment.objects.get().conditions.get().field == field


def test_a_broken_segment_is_skipped_and_flagged_and_the_others_refreshed(planted_catalogue):
    broken = Segment.objects.create(slug="broken", name="Broken")
    SegmentCondition.objects.create(
        segment=broken, field="lifetime_value", operator="gt", value="1"
    )
    active = Segment.objects.create(slug="active", name="Active")
    SegmentCondition.objects.create(segment=active, field="events_total", operator="gt", value="0")

    sizes = segments_refresh(learn=False)

    assert "broken" not in sizes and sizes["active"] > 0
    broken.refresh_from_db()
    assert broken.profile["problem"].startswith("not refreshed:")
    assert "lifetime_value" in broken.profile["problem"]


def test_refresh_runs_from_the_list_before_any_segment_exists(
    planted_catalogue, admin_client, django_capture_on_commit_callbacks
):
    changelist = reverse("admin:recommendations_segment_changelist")
    assert "Refresh every segment now" in admin_client.get(changelist).content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("admin:recommendations_segment_refresh_all"))

    assert response.status_code == 302
    assert Segment.objects.filter(kind="learned", size__gt=0).exists()


def test_refresh_needs_a_post(admin_client):
    response = admin_client.get(reverse("admin:recommendations_segment_refresh_all"))
    assert response.status_code == 405


def test_a_placement_count_far_beyond_a_block_is_refused():
    placement = Placement(slug="huge", name="Huge", count=30_000)
    with pytest.raises(ValidationError) as raised:
        placement.full_clean()
    assert "count" in raised.value.message_dict
    Placement(slug="fine", name="Fine", count=MAX_PLACEMENT_COUNT).full_clean()


def test_activating_a_personalize_version_explains_what_it_is(admin_client):
    version = ModelVersion.objects.create(source="personalize", status="ready")
    changelist = reverse("admin:recommendations_modelversion_changelist")

    response = admin_client.post(
        changelist,
        {"action": "activate", "_selected_action": [version.pk]},
        follow=True,
    )

    page = response.content.decode()
    assert "Amazon Personalize solution version" in page and "no artifact" not in page
    version.refresh_from_db()
    assert not version.is_active
    filtered = admin_client.get(changelist, {"source__exact": "personalize"}).content.decode()
    assert "Activate (roll back" not in filtered


def test_the_site_root_leads_to_the_admin_not_a_404(client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == reverse("admin:index")
    assert client.get("/", follow=True).status_code == 200  # the login page


def test_a_segments_page_links_to_its_members_paged_in_the_user_list(
    planted_catalogue, admin_client
):
    segments_refresh()
    segment = Segment.objects.filter(size__gt=0).order_by("pk").first()

    page = admin_client.get(reverse("admin:recommendations_segment_change", args=[segment.pk]))
    text = page.content.decode()
    link = f"?segment_memberships__segment__id__exact={segment.pk}"
    assert f"See the {segment.size:,} members" in text and link in text
    assert text.count("user-0") < 5  # the members are not all printed on the page

    members = admin_client.get(reverse("admin:recommendations_enduser_changelist") + link)
    assert members.status_code == 200
    assert members.context["cl"].result_count == segment.size
