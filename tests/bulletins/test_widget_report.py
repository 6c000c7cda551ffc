"""The widget engagement report: a placement's experiment arms with their uplifts, positions
and days, counted from impression events, human clicks and conversions; its CSV and its admin
page, and who may see it.

The data goes the real way: impressions and purchases through the events service, clicks
through the public redirect with the tokens the recommendations API signs."""

import csv
import datetime as dt
import io

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from bulletins.models import Click, Conversion
from bulletins.services.reports import OUTSIDE_ARMS, widget_report, widget_report_rows
from recommendations.models import EndUser, Interaction, Placement, PlacementVariant
from recommendations.roles import MARKETERS
from recommendations.services.events import events_ingest
from recsite import tokens
from tests.factories import EndUserFactory, ItemFactory

pytestmark = pytest.mark.django_db

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SCANNER = "python-requests/2.32"


def show(user: EndUser, arm: PlacementVariant | None, positions=(1, 2), *, when=None) -> None:
    """The widget's impression events for `user`: one per item shown."""
    when = when or timezone.now()
    request_id = f"{user.external_id}-{when.timestamp():.0f}"
    events_ingest(
        events=[
            {
                "user_id": user.external_id,
                "item_id": f"item-{position}",
                "event_type": "impression",
                "event_id": f"imp:{request_id}:{position}",
                "timestamp": when.isoformat(),
                "context": {
                    "placement": "for-you",
                    "variant": arm.name if arm else None,
                    "position": position,
                    "source": arm.source if arm else "inhouse",
                    "request_id": request_id,
                },
            }
            for position in positions
        ],
        source=Interaction.Source.WIDGET,
    )


def click(user: EndUser | None, arm: PlacementVariant, position: int, agent=BROWSER) -> None:
    """A click on the widget link the recommendations API signed for `user` (None: a visitor
    it did not know) in `arm`."""
    token = tokens.widget_click_token(
        arm.placement_id, user.pk if user else 0, position, f"item-{position}", arm.source, arm.pk
    )
    assert Client().get(f"/r/{token}", HTTP_USER_AGENT=agent).status_code == 302


def buy(user: EndUser, capture) -> None:
    with capture(execute=True):
        events_ingest(
            events=[
                {
                    "user_id": user.external_id,
                    "item_id": "item-2",
                    "event_type": "purchase",
                    "event_id": f"order-{user.external_id}",
                    "event_value": 12.5,
                    "timestamp": timezone.now().isoformat(),
                }
            ]
        )


@pytest.fixture
def placement(db) -> Placement:
    for position in (1, 2):
        ItemFactory(external_id=f"item-{position}")
    return Placement.objects.get(slug="for-you")


@pytest.fixture
def experiment(placement, django_capture_on_commit_callbacks):
    """A trending holdout (control) and the in-house model, half and half.

    holdout: h0..h3 are shown positions 1 and 2; h0 clicks position 1.
    model: m0, m1, m2 and m4 are shown positions 1 and 2; m3's impressions were lost but m3
    clicks position 1; m0 clicks position 1 twice; m1 clicks position 2 and buys; m2's click
    is a link scanner's; a visitor the widget did not know clicks position 1.
    Outside the arms: o0 was shown position 1 before the experiment had arms."""
    holdout = PlacementVariant.objects.create(
        placement=placement, name="holdout", share=50, source="trending", is_control=True
    )
    model = PlacementVariant.objects.create(
        placement=placement, name="model", share=50, source="inhouse"
    )
    people = {
        name: EndUserFactory(external_id=name) for name in "h0 h1 h2 h3 m0 m1 m2 m3 m4 o0".split()
    }
    for name in ("h0", "h1", "h2", "h3"):
        show(people[name], holdout)
    for name in ("m0", "m1", "m2", "m4"):
        show(people[name], model)
    show(people["o0"], None, positions=(1,))
    click(people["h0"], holdout, 1)
    click(people["m0"], model, 1)
    click(people["m0"], model, 1)
    click(people["m1"], model, 2)
    click(people["m2"], model, 1, agent=SCANNER)
    click(people["m3"], model, 1)
    click(None, model, 1)
    buy(people["m1"], django_capture_on_commit_callbacks)
    assert Click.objects.filter(is_human=True).count() == 6
    assert Conversion.objects.get().placement_variant == model
    return placement


# The numbers


def test_each_arm_counts_visitors_clickers_and_converters_with_humans_only(experiment):
    report = widget_report(placement=experiment)

    holdout, model, outside = report.arms
    assert (holdout.name, holdout.is_control, holdout.share) == ("holdout", True, 50)
    assert holdout.source == "non-personalized (trending) holdout"
    assert (model.name, model.is_control, model.source) == ("model", False, "in-house model")
    assert report.control == "holdout"
    h, m = holdout.counts, model.counts
    assert (h.delivered, h.impressions, h.clickers, h.clicks, h.converters) == (4, 8, 1, 1, 0)
    # m3 counts as shown (a click proves it); the scanner's click counts nowhere; m0's two
    # clicks are one clicker; the unknown visitor's click is a click but nobody's
    assert (m.delivered, m.impressions, m.clickers, m.clicks) == (5, 8, 3, 5)
    assert (m.converters, m.conversions, m.value) == (1, 1, 12.5)
    assert (m.ctr, m.conversion_rate) == (3 / 5, 1 / 5)
    assert (outside.name, outside.counts.delivered, outside.counts.impressions) == (
        OUTSIDE_ARMS,
        1,
        1,
    )
    assert outside.ctr_uplift is None and not outside.is_control
    assert report.unidentified_clicks == 1


def test_the_model_arm_has_its_uplifts_over_the_control_and_a_sample_size_warning(experiment):
    report = widget_report(placement=experiment)

    holdout, model, _ = report.arms
    assert holdout.ctr_uplift is None and holdout.warning is None
    ctr = model.ctr_uplift
    assert (ctr.control_successes, ctr.control_trials) == (1, 4)
    assert (ctr.variant_successes, ctr.variant_trials) == (3, 5)
    assert ctr.relative_uplift == pytest.approx(0.6 / 0.25 - 1)
    assert ctr.relative_low < ctr.relative_uplift < ctr.relative_high
    assert 0 < ctr.p_value <= 1 and ctr.test == "fisher"
    conversion = model.conversion_uplift
    assert (conversion.control_successes, conversion.variant_successes) == (0, 1)
    assert conversion.continuity_corrected
    assert model.warning.startswith("Below the sample size needed to detect +10.0%")
    assert report.min_detectable_uplift == 0.10


def test_positions_count_people_shown_and_clicking_there(experiment):
    report = widget_report(placement=experiment)

    positions = dict(report.by_position)
    assert list(positions) == [1, 2]
    first, second = positions[1], positions[2]
    # shown at 1: four holdout, four model, o0, and m3 who clicked it
    assert (first.delivered, first.impressions, first.clickers, first.clicks) == (10, 9, 3, 5)
    assert (second.delivered, second.impressions, second.clickers, second.clicks) == (8, 8, 1, 1)
    assert (first.conversions, second.conversions) == (0, 1)


def test_days_count_impressions_human_clicks_and_conversions(experiment):
    report = widget_report(placement=experiment)

    assert report.by_day == [(timezone.localdate(), 17, 6, 1)]


def test_the_period_leaves_out_what_came_before_it(placement):
    arm = PlacementVariant.objects.create(
        placement=placement, name="all", share=100, is_control=True
    )
    old, recent = EndUserFactory(external_id="old"), EndUserFactory(external_id="new")
    show(old, arm, when=timezone.now() - dt.timedelta(days=40))
    show(recent, arm)
    click(old, arm, 1)
    Click.objects.update(created_at=timezone.now() - dt.timedelta(days=40))

    last_month = widget_report(placement=placement, days=30).arms[0].counts
    all_along = widget_report(placement=placement).arms[0].counts

    assert (last_month.delivered, last_month.impressions, last_month.clicks) == (1, 2, 0)
    assert (all_along.delivered, all_along.impressions, all_along.clicks) == (2, 4, 1)


def test_without_arms_one_row_counts_everyone(placement):
    user = EndUserFactory(external_id="reader")
    show(user, None)

    report = widget_report(placement=placement)

    [everyone] = report.arms
    assert (everyone.name, everyone.source, everyone.is_control) == (
        "(all)",
        "as the placement is set",
        False,
    )
    assert (everyone.counts.delivered, everyone.counts.impressions) == (1, 2)
    assert report.control is None


def test_impressions_of_other_placements_and_other_events_do_not_count(placement):
    user = EndUserFactory(external_id="reader")
    events_ingest(
        events=[
            {
                "user_id": "reader",
                "item_id": "item-1",
                "event_type": "impression",
                "event_id": "imp:elsewhere:1",
                "context": {"placement": "sidebar", "variant": None, "position": 1},
            },
            {
                "user_id": "reader",
                "item_id": "item-1",
                "event_type": "view",
                "event_id": "view-1",
                "context": {"placement": "for-you", "variant": None, "position": 1},
            },
        ]
    )

    report = widget_report(placement=placement)

    assert report.arms[0].counts.impressions == 0 and report.by_day == []
    assert user.interactions.count() == 2


# The CSV


def test_csv_rows_per_arm_position_and_day(experiment):
    header, *rows = widget_report_rows(widget_report(placement=experiment))

    table = [dict(zip(header, row, strict=True)) for row in rows]
    assert [(row["section"], row["name"]) for row in table] == [
        ("arm", "holdout"),
        ("arm", "model"),
        ("arm", OUTSIDE_ARMS),
        ("position", "1"),
        ("position", "2"),
        ("day", f"{timezone.localdate():%Y-%m-%d}"),
    ]
    model = table[1]
    assert (model["visitors"], model["impressions"], model["clickers"], model["clicks"]) == (
        5,
        8,
        3,
        5,
    )
    assert (model["converters"], model["value"], model["ctr"]) == (1, 12.5, 0.6)
    assert model["ctr_uplift_low"] < model["ctr_uplift"] < model["ctr_uplift_high"]
    assert table[0]["ctr_uplift"] is None  # the control
    day = table[-1]
    assert (day["impressions"], day["clicks"], day["conversions"], day["visitors"]) == (
        17,
        6,
        1,
        None,
    )


# The admin page


def report_url(placement) -> str:
    return reverse("admin:bulletins_widgetengagement_change", args=[placement.pk])


@pytest.fixture
def marketer_client(client):
    user = User.objects.create_user("mia", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=MARKETERS))
    client.force_login(user)
    return client


@pytest.fixture(params=["superuser", "marketer"])
def staff_client(request):
    """The same report for a superuser and for a member of Marketers (who may see
    placements, and so their widgets' engagement)."""
    fixture = "admin_client" if request.param == "superuser" else "marketer_client"
    return request.getfixturevalue(fixture)


def test_the_report_page_shows_arms_uplifts_and_three_charts(staff_client, experiment):
    response = staff_client.get(report_url(experiment))

    assert response.status_code == 200
    page = response.content.decode()
    assert response.context["report"].arms[1].counts.clickers == 3
    assert 'holdout <em class="control-mark">(control)</em>' in page
    assert page.count('<svg class="report-chart"') == 3  # per arm, per position, per day
    assert '<title id="report-arms-chart-title">CTR per arm, with 95% intervals</title>' in page
    assert 'class="whisker"' in page
    assert "+140.0% (95% CI" in page  # the model arm's CTR uplift
    assert "Below the sample size needed to detect +10.0%" in page
    assert 'id="report-unidentified"' in page
    assert "60.00%" in page  # the model arm's CTR
    assert 'id="report-positions"' in page and 'id="report-days"' in page


def test_the_list_names_each_placement_with_its_arms(admin_client, experiment):
    response = admin_client.get(reverse("admin:bulletins_widgetengagement_changelist"))

    page = response.content.decode()
    assert "Widget engagement: choose a placement" in page
    assert "holdout 50% (control), model 50%" in page
    assert report_url(experiment) in page
    index = admin_client.get(reverse("admin:index")).content.decode()
    assert reverse("admin:bulletins_widgetengagement_changelist") in index


def test_a_larger_uplift_asked_for_changes_the_warning(admin_client, experiment):
    page = admin_client.get(report_url(experiment), {"uplift": "50"}).content.decode()

    assert "Below the sample size needed to detect +50.0%" in page
    assert 'name="uplift" min="1" max="1000" step="1" value="50"' in page


def test_the_default_period_is_the_last_30_days_and_an_unknown_one_is_not_found(
    admin_client, experiment
):
    assert admin_client.get(report_url(experiment)).context["report"].days == 30
    assert admin_client.get(report_url(experiment), {"days": "all"}).context["report"].days is None
    assert admin_client.get(report_url(experiment), {"days": "12"}).status_code == 404


def test_before_any_impression_the_page_says_nothing_was_shown(admin_client, placement):
    page = admin_client.get(report_url(placement)).content.decode()

    assert 'id="report-empty"' in page
    assert '<svg class="report-chart"' not in page


def test_csv_download(admin_client, experiment):
    response = admin_client.get(report_url(experiment), {"days": "all", "format": "csv"})

    assert response["Content-Type"] == "text/csv"
    assert response["Content-Disposition"] == 'attachment; filename="for-you-widget-all-time.csv"'
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [row["name"] for row in rows[:3]] == ["holdout", "model", OUTSIDE_ARMS]
    assert (rows[1]["visitors"], rows[1]["clickers"], rows[1]["converters"]) == ("5", "3", "1")


def test_the_report_cannot_be_edited_or_added_to(admin_client, placement):
    assert admin_client.get(reverse("admin:bulletins_widgetengagement_add")).status_code == 403
    response = admin_client.post(report_url(placement), {"name": "Renamed"})
    assert response.status_code == 200  # the POST is answered with the report, changing nothing
    assert Placement.objects.get(pk=placement.pk).name == "For you"


def test_a_visitor_who_is_not_staff_is_sent_to_the_login_page(client, experiment):
    user = User.objects.create_user("reader", password="pw")  # not staff
    client.force_login(user)

    for params in ({}, {"format": "csv"}):
        response = client.get(report_url(experiment), params)
        assert response.status_code == 302 and "/login/" in response["Location"]


def test_staff_who_may_not_see_placements_get_403(client, experiment):
    user = User.objects.create_user("sam", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_bulletinrun"))
    client.force_login(user)

    assert client.get(report_url(experiment)).status_code == 403
    assert client.get(report_url(experiment), {"format": "csv"}).status_code == 403
