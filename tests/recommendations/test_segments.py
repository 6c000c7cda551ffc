import pytest
from django.urls import reverse

from recommendations.models import EndUser, Segment, SegmentCondition, SegmentMembership
from recommendations.services.segments import segments_refresh

pytestmark = pytest.mark.django_db


def _rule_segment(*conditions: tuple[str, str, str]) -> Segment:
    segment = Segment.objects.create(slug="s", name="S", kind=Segment.Kind.RULES)
    for field, operator, value in conditions:
        SegmentCondition.objects.create(
            segment=segment, field=field, operator=operator, value=value
        )
    return segment


def test_rule_segment_holds_exactly_the_users_meeting_its_conditions(planted_catalogue):
    segment = _rule_segment(("country", "equals", "IN"), ("events_total", "gt", "20"))
    segments_refresh(learn=False)

    data = planted_catalogue
    counts = data.interactions["USER_ID"].value_counts()
    indian = set(data.users.loc[data.users["COUNTRY"] == "IN", "USER_ID"])
    expected = {user for user in indian if counts.get(user, 0) > 20}
    members = set(
        SegmentMembership.objects.filter(segment=segment).values_list(
            "user__external_id", flat=True
        )
    )
    segment.refresh_from_db()
    assert members == expected and segment.size == len(expected) > 0
    assert segment.profile["conditions"] == ["country equals 'IN'", "events_total gt 20"]


def test_learned_segments_cover_everyone_with_no_tiny_segment(planted_catalogue):
    sizes = segments_refresh()

    learned = Segment.objects.filter(kind=Segment.Kind.LEARNED)
    users = EndUser.objects.count()
    assert sum(sizes.values()) == users == sum(s.size for s in learned)
    assert min(s.size for s in learned) >= max(10, 0.02 * users)
    first = learned.first()
    assert "silhouette" in first.profile["criterion"]
    assert first.profile["top_categories"] and " · " in first.name


def test_refresh_is_repeatable(planted_catalogue):
    first = segments_refresh()
    second = segments_refresh()
    assert first == second
    assert SegmentMembership.objects.count() == sum(second.values())


def test_condition_form_refuses_a_reversed_range(admin_client):
    response = admin_client.post(
        reverse("admin:recommendations_segment_add"),
        {
            "name": "Big spenders",
            "slug": "big-spenders",
            "kind": "rules",
            "conditions-TOTAL_FORMS": "1",
            "conditions-INITIAL_FORMS": "0",
            "conditions-0-field": "conversions",
            "conditions-0-operator": "between",
            "conditions-0-value": "10, 2",
        },
    )
    assert response.status_code == 200
    assert "low 10 is above high 2" in response.content.decode()
    assert not Segment.objects.exists()


def test_segment_list_shows_size_and_profile(planted_catalogue, admin_client):
    segments_refresh()
    page = admin_client.get(reverse("admin:recommendations_segment_changelist"))
    assert page.status_code == 200
    assert "of users; top:" in page.content.decode()
