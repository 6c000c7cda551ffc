import pytest
from django.contrib.auth.models import Group, User

from recommendations.models import Item, Placement, Rule
from recommendations.roles import MARKETERS
from recommendations.services.training import model_version_train


@pytest.fixture
def marketer(transactional_db):
    user = User.objects.create_user("mia", password="a-long-test-password", is_staff=True)
    user.groups.add(Group.objects.get(name=MARKETERS))
    return user


def test_marketer_creates_a_rule_and_sees_its_effect_in_the_preview(
    live_server, page, marketer, planted_catalogue
):
    model_version_train()
    placement = Placement.objects.get(slug="for-you")

    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "mia")
    page.fill("#id_password", "a-long-test-password")
    page.click("input[type=submit]")
    page.wait_for_selector("#content-main")

    page.goto(f"{live_server.url}/admin/recommendations/rule/add/")
    page.select_option("#id_placement", str(placement.pk))
    page.fill("#id_name", "No cooking this week")
    page.select_option("#id_kind", "exclude")
    page.fill("#id_conditions-0-field", "categories")
    page.select_option("#id_conditions-0-operator", "equals")
    page.fill("#id_conditions-0-value", "Cooking")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    assert Rule.objects.get().name == "No cooking this week"

    page.goto(f"{live_server.url}/admin/recommendations/placement/{placement.pk}/preview/")
    page.fill("#preview-user", "user-00010")
    page.click("#preview-form input[type=submit]")
    page.wait_for_selector("#preview-items")

    assert "removed by No cooking this week" in page.inner_text("#preview-changes")
    shown = page.locator("#preview-items tbody tr").all_inner_texts()
    assert len(shown) == placement.count
    cooking = {item.title for item in Item.objects.all() if item.categories[:1] == ["Cooking"]}
    assert not any(title in row for row in shown for title in cooking)
