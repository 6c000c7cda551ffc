import pytest
from django.core.management import call_command
from django.urls import reverse

from recommendations.models import (
    EndUser,
    Item,
    Placement,
    RecommendationSet,
    Rule,
    RuleCondition,
    Segment,
    SegmentMembership,
)
from recommendations.services.preview import placement_preview
from recommendations.services.recommending import recommendations_refresh_user
from recommendations.services.training import model_version_train

pytestmark = pytest.mark.django_db


@pytest.fixture
def trained(planted_catalogue):
    model_version_train()
    return planted_catalogue


@pytest.fixture
def for_you():
    return Placement.objects.get(slug="for-you")


def _rule(placement, kind, *conditions, **fields) -> Rule:
    rule = Rule.objects.create(placement=placement, name=f"{kind} rule", kind=kind, **fields)
    for field, operator, value in conditions:
        RuleCondition.objects.create(rule=rule, field=field, operator=operator, value=value)
    return rule


def _lists(placement_slug="for-you") -> dict[str, list[str]]:
    return {
        s.user.external_id: [e["item_id"] for e in s.items]
        for s in RecommendationSet.objects.filter(placement__slug=placement_slug).select_related(
            "user"
        )
    }


def _topic(item_id: str) -> str:
    return Item.objects.get(external_id=item_id).categories[0]


def test_excluded_items_appear_in_no_list_of_any_path(trained, for_you):
    _rule(for_you, "exclude", ("categories", "equals", "Cooking"))
    call_command("recommend", "--all", "-v0")
    user = EndUser.objects.get(external_id="user-00010")
    recommendations_refresh_user(user_pk=user.pk)

    cooking = {item.external_id for item in Item.objects.all() if "Cooking" in item.categories}
    shown = {item for items in _lists().values() for item in items}
    assert shown and not shown & cooking


def test_boost_moves_matching_items_up(trained, for_you):
    call_command("recommend", "--all", "-v0")
    before = _lists()
    _rule(for_you, "boost", ("categories", "equals", "Travel"), multiplier=50.0)
    call_command("recommend", "--all", "-v0")
    after = _lists()
    assert _first_in(after, "Travel") > _first_in(before, "Travel")


def _first_in(lists: dict[str, list[str]], topic: str) -> int:
    return sum(_topic(items[0]) == topic for items in lists.values() if items)


def test_pinned_item_is_at_its_position_for_everyone(trained, for_you):
    item = Item.objects.get(external_id="item-00007")
    _rule(for_you, "pin", pin_item=item, position=2)
    call_command("recommend", "--all", "-v0")
    lists = _lists()
    assert all(items[1] == "item-00007" for items in lists.values() if len(items) >= 2)


def test_every_item_field_a_rule_may_name_works_in_the_batch(trained, for_you):
    priced = Item.objects.filter(price__gt=0).values_list("external_id", flat=True)
    conditions = [
        ("price", "gt", "0"),
        ("tags", "equals", "python"),
        ("title", "contains", "guide"),
        ("published_at", "lt", "2020-01-01"),
        ("available", "equals", "false"),
        ("item_id", "in", "item-00001"),
        ("content_type", "equals", "podcast"),
    ]
    for n, condition in enumerate(conditions):
        _rule(for_you, "exclude", condition, priority=n)
    call_command("recommend", "--all", "-v0")
    shown = {item for items in _lists().values() for item in items}
    assert shown and not shown & set(priced)


def test_cap_per_category_diversifies(trained, for_you):
    _rule(for_you, "cap_per_category", cap=2)
    call_command("recommend", "--all", "-v0")
    for items in _lists().values():
        topics = [_topic(item) for item in items]
        assert max(topics.count(topic) for topic in set(topics)) <= 2


def test_segment_rule_applies_only_to_its_members(trained, for_you):
    segment = Segment.objects.create(slug="vip", name="VIP")
    members = list(EndUser.objects.order_by("pk")[:20])
    SegmentMembership.objects.bulk_create(
        [SegmentMembership(segment=segment, user=user) for user in members]
    )
    _rule(
        for_you,
        "pin",
        pin_item=Item.objects.get(external_id="item-00003"),
        position=1,
        segment=segment,
    )
    call_command("recommend", "--all", "-v0")
    lists = _lists()
    member_ids = {user.external_id for user in members}
    assert all(lists[user][0] == "item-00003" for user in member_ids if lists[user])
    others = [items[0] for user, items in lists.items() if user not in member_ids and items]
    assert others.count("item-00003") < len(others) / 2


def test_rule_outside_its_dates_changes_nothing(trained, for_you):
    import datetime as dt

    from django.utils import timezone

    _rule(
        for_you,
        "exclude",
        ("item_id", "in", "item-00001,item-00002"),
        starts_at=timezone.now() + dt.timedelta(days=1),
    )
    call_command("recommend", "--all", "-v0")
    call_command("recommend", "--all", "-v0")
    assert any({"item-00001", "item-00002"} & set(items) for items in _lists().values())


def _admin_rule_post(admin_client, placement, conditions=(), **fields):
    data = {
        "placement": placement.pk,
        "name": "Marketer rule",
        "priority": 100,
        "is_active": "on",
        "conditions-TOTAL_FORMS": str(len(conditions)),
        "conditions-INITIAL_FORMS": "0",
        **fields,
    }
    for n, (field, operator, value) in enumerate(conditions):
        data.update(
            {
                f"conditions-{n}-field": field,
                f"conditions-{n}-operator": operator,
                f"conditions-{n}-value": value,
            }
        )
    return admin_client.post(reverse("admin:recommendations_rule_add"), data)


def test_admin_saves_a_valid_rule_with_conditions(trained, for_you, admin_client):
    response = _admin_rule_post(
        admin_client, for_you, [("price", "between", "10, 50")], kind="bury", multiplier="0.5"
    )
    assert response.status_code == 302
    rule = Rule.objects.get()
    assert rule.conditions.get().value == "10, 50"


@pytest.mark.parametrize(
    ("fields", "conditions", "message"),
    [
        ({"kind": "boost", "multiplier": "0.5"}, [], "multiplier must be above 1"),
        ({"kind": "pin", "position": "2"}, [], "item"),
        ({"kind": "cap_per_category"}, [], "cap"),
        ({"kind": "exclude"}, [("colour", "equals", "red")], "No item has a field"),
        ({"kind": "exclude"}, [("price", "between", "50, 10")], "low 50 is above high 10"),
        ({"kind": "exclude"}, [("price", "lt", "cheap")], "neither a number nor a date"),
    ],
)
def test_admin_refuses_invalid_rules_with_a_clear_message(
    trained, for_you, admin_client, fields, conditions, message
):
    response = _admin_rule_post(admin_client, for_you, conditions, **fields)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Rule.objects.exists()


def test_admin_refuses_a_contradictory_rule(trained, for_you, admin_client):
    _rule(for_you, "include_only", ("categories", "equals", "Cooking"))
    response = _admin_rule_post(
        admin_client, for_you, [("categories", "equals", "Cooking")], kind="exclude"
    )
    assert response.status_code == 200
    assert "contradicts" in response.content.decode()
    assert Rule.objects.count() == 1


def test_preview_shows_the_list_and_what_each_rule_changed(trained, for_you, admin_client):
    _rule(for_you, "exclude", ("categories", "equals", "Cooking"))
    url = reverse("admin:recommendations_placement_preview", args=[for_you.pk])
    page = admin_client.get(url, {"user": "user-00010"}).content.decode()
    assert "What user-00010 sees" in page
    assert "removed by exclude rule" in page or "No rule changed this list" in page
    assert "Without any rule" in page


def test_preview_of_an_unknown_user_says_so(trained, for_you, admin_client):
    url = reverse("admin:recommendations_placement_preview", args=[for_you.pk])
    page = admin_client.get(url, {"user": "nobody"}).content.decode()
    assert "No end user with the id &#x27;nobody&#x27;" in page


def test_a_rule_the_catalogue_cannot_evaluate_is_skipped_when_serving_and_flagged(
    trained, for_you, client
):
    """Saved before validation existed (or straight into the database): serving leaves it
    out, keeps the others, and admin shows why."""
    broken = _rule(for_you, "exclude", ("price", "lt", "cheap"))
    working = _rule(for_you, "exclude", ("categories", "equals", "Cooking"))
    call_command("recommend", "--all", "-v0")

    cooking = {item.external_id for item in Item.objects.all() if "Cooking" in item.categories}
    shown = {item for items in _lists().values() for item in items}
    assert shown and not shown & cooking
    broken.refresh_from_db()
    working.refresh_from_db()
    assert "neither a number nor a date" in broken.problem and working.problem == ""


def test_preview_lists_a_segment_rule_as_active_only_for_its_members(trained, for_you):
    segment = Segment.objects.create(slug="vip", name="VIP")
    member, other = EndUser.objects.order_by("pk")[:2]
    SegmentMembership.objects.create(segment=segment, user=member)
    _rule(for_you, "boost", ("categories", "equals", "Cooking"), multiplier=2, segment=segment)

    for_member = placement_preview(placement=for_you, user_external_id=member.external_id)
    for_other = placement_preview(placement=for_you, user_external_id=other.external_id)

    assert for_member.rules == ["boost rule (boost)"] and for_member.inactive_rules == []
    assert for_other.rules == []
    assert for_other.inactive_rules == [
        f"boost rule (only for segment VIP, which {other.external_id} is not in)"
    ]
