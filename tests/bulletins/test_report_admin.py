"""The experiment report in the bulletin admin: per variant with uplifts and intervals, per
position, per run and per day, its charts, the run selector, the CSV export and who may see it.

The data goes the real way: a run sent to a two-arm experiment, human clicks on the public
links, conversions through the events service."""

import csv
import datetime as dt
import io
import re

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from bulletins.models import Bulletin, BulletinRun, Click, Conversion, Delivery, Variant
from bulletins.services.runs import bulletin_run_in_process, bulletin_run_start
from recommendations.models import EndUser
from recommendations.roles import MARKETERS
from recommendations.services.events import events_ingest
from recsite import tokens

pytestmark = pytest.mark.django_db

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
UPLIFT = re.compile(r"[+−]\d+\.\d% \(95% CI [+−]\d+\.\d% to [+−]\d+\.\d%\), p (=|&lt;) \d\.\d{3}")


@pytest.fixture
def marketer_client(client):
    user = User.objects.create_user("mia", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=MARKETERS))
    client.force_login(user)
    return client


@pytest.fixture(params=["superuser", "marketer"])
def staff_client(request):
    """The same report for a superuser and for a member of Marketers."""
    fixture = "admin_client" if request.param == "superuser" else "marketer_client"
    return request.getfixturevalue(fixture)


def report_url(bulletin) -> str:
    return reverse("admin:bulletins_bulletin_report", args=[bulletin.pk])


def send(bulletin) -> BulletinRun:
    """A run sent to the end, its emails sent an hour ago (a click right after sending is a
    machine's)."""
    run, _ = bulletin_run_start(bulletin=bulletin)
    bulletin_run_in_process(run=run)
    Delivery.objects.filter(run=run).update(sent_at=timezone.now() - dt.timedelta(hours=1))
    return run


def click(delivery: Delivery, position: int) -> None:
    entry = delivery.items[position - 1]
    token = tokens.click_token(delivery.pk, entry["position"], entry["item_id"])
    Client().get(f"/r/{token}", HTTP_USER_AGENT=BROWSER)


def convert(delivery: Delivery, capture) -> None:
    """A purchase of the delivery's first item, attributed after commit to its last click."""
    event = {
        "user_id": delivery.user.external_id,
        "item_id": delivery.items[0]["item_id"],
        "event_type": "purchase",
        "event_id": f"order-{delivery.pk}",
        "timestamp": timezone.now().isoformat(),
    }
    with capture(execute=True):
        events_ingest(events=[event])


@pytest.fixture
def experiment(weekly, mailbox, django_capture_on_commit_callbacks):
    """Weekly sent once to a trending holdout (the control) and the in-house model: in the
    holdout 2 people click at position 1; in the model arm 5 people click (one of them twice,
    at positions 1 and 2), 2 of whom buy."""
    Variant.objects.create(
        bulletin=weekly,
        name="holdout",
        share=50,
        source=Variant.Source.NON_PERSONALIZED,
        is_control=True,
    )
    Variant.objects.create(bulletin=weekly, name="model", share=50, source=Variant.Source.IN_HOUSE)
    run = send(weekly)
    sent = Delivery.objects.filter(run=run).select_related("user", "variant").order_by("pk")
    holdout = [d for d in sent if d.variant.name == "holdout"]
    model = [d for d in sent if d.variant.name == "model"]
    for delivery in holdout[:2]:
        click(delivery, position=1)
    for delivery in model[:5]:
        click(delivery, position=1)
    click(model[0], position=2)
    for delivery in model[:2]:
        convert(delivery, django_capture_on_commit_callbacks)
    assert Click.objects.filter(is_human=True).count() == 8
    assert Conversion.objects.count() == 2
    return {"run": run, "holdout": len(holdout), "model": len(model)}


# The page


def test_changelist_links_to_the_report(admin_client):
    bulletin = Bulletin.objects.create(slug="b", name="B", subject_template="Hi")

    response = admin_client.get(reverse("admin:bulletins_bulletin_changelist"))

    assert report_url(bulletin) in response.content.decode()


def test_before_any_run_the_report_says_nothing_was_sent(admin_client):
    bulletin = Bulletin.objects.create(slug="b", name="B", subject_template="Hi")

    response = admin_client.get(report_url(bulletin))

    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="report-empty"' in page
    assert "Nothing sent yet" in page
    assert '<svg class="report-chart"' not in page


def test_staff_without_view_permission_on_bulletins_gets_403(client):
    bulletin = Bulletin.objects.create(slug="b", name="B", subject_template="Hi")
    user = User.objects.create_user("sam", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_bulletinrun"))
    client.force_login(user)

    assert client.get(report_url(bulletin)).status_code == 403
    assert client.get(report_url(bulletin), {"format": "csv"}).status_code == 403


def test_a_run_of_another_bulletin_is_not_found(admin_client):
    bulletin = Bulletin.objects.create(slug="b", name="B", subject_template="Hi")
    other = Bulletin.objects.create(slug="c", name="C", subject_template="Hi")
    run = BulletinRun.objects.create(bulletin=other, run_key="k")

    assert admin_client.get(report_url(bulletin), {"run": run.pk}).status_code == 404


def test_report_shows_each_arm_with_its_uplift_intervals_and_charts(staff_client, experiment):
    response = staff_client.get(report_url(experiment["run"].bulletin))

    assert response.status_code == 200
    page = response.content.decode()
    holdout, model = response.context["report"].arms
    assert (holdout.name, holdout.is_control, model.name) == ("holdout", True, "model")
    assert (holdout.counts.delivered, model.counts.delivered) == (
        experiment["holdout"],
        experiment["model"],
    )
    assert (holdout.counts.clickers, model.counts.clickers) == (2, 5)
    assert (model.counts.clicks, model.counts.converters) == (6, 2)
    assert 'holdout <em class="control-mark">(control)</em>' in page
    assert "non-personalized (trending) holdout" in page and "in-house model" in page
    assert len(UPLIFT.findall(page)) == 2  # the model arm's CTR and conversion uplifts
    assert "Below the sample size needed to detect +10.0%" in page  # too few people for that
    assert "over all runs a person counts once" in page
    assert page.count('<svg class="report-chart"') == 3  # per arm, per position, per day
    assert '<title id="report-arms-chart-title">CTR per variant, with 95% intervals</title>' in page
    assert 'class="whisker"' in page
    assert f"{5 / experiment['model']:.2%}" in page  # the model arm's CTR


def test_report_per_position_per_run_and_per_day(admin_client, experiment):
    response = admin_client.get(report_url(experiment["run"].bulletin))

    report = response.context["report"]
    positions = {position: counts for position, counts in report.by_position}
    assert (positions[1].clickers, positions[1].clicks, positions[1].conversions) == (7, 7, 1)
    assert (positions[2].clickers, positions[2].conversions) == (1, 1)
    assert [(run, counts.clickers) for run, counts in report.by_run] == [(experiment["run"], 7)]
    assert report.by_day == [(timezone.localdate(), 8, 2)]
    page = response.content.decode()
    assert reverse("admin:bulletins_bulletinrun_change", args=[experiment["run"].pk]) in page
    assert 'id="report-positions"' in page and 'id="report-days"' in page


def test_run_selector_shows_one_run_and_over_all_runs_a_person_counts_once(
    admin_client, experiment
):
    bulletin = experiment["run"].bulletin
    second = send(bulletin)  # the same people, nobody clicks
    people = experiment["holdout"] + experiment["model"]

    everything = admin_client.get(report_url(bulletin)).context["report"]
    first_only = admin_client.get(report_url(bulletin), {"run": experiment["run"].pk})
    second_only = admin_client.get(report_url(bulletin), {"run": second.pk}).context["report"]

    assert sum(arm.counts.delivered for arm in everything.arms) == people
    assert sum(arm.counts.clickers for arm in everything.arms) == 7
    assert len(everything.by_run) == 2
    assert sum(arm.counts.clickers for arm in second_only.arms) == 0
    assert [run for run, _ in second_only.by_run] == [second]
    page = first_only.content.decode()
    assert f'<option value="{experiment["run"].pk}" selected>' in page
    assert f'<option value="{second.pk}">' in page
    assert "in one run a person gets one email" in page


def test_csv_export_has_a_row_per_arm_position_and_run(admin_client, experiment):
    run = experiment["run"]

    response = admin_client.get(report_url(run.bulletin), {"run": run.pk, "format": "csv"})

    assert response["Content-Type"] == "text/csv"
    assert response["Content-Disposition"] == (
        f'attachment; filename="weekly-report-run-{run.pk}.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(row["section"], row["name"]) for row in rows] == [
        ("arm", "holdout"),
        ("arm", "model"),
        ("position", "1"),
        ("position", "2"),
        ("run", f"#{run.pk} {run.started_at:%Y-%m-%d}"),
    ]
    holdout, model = rows[0], rows[1]
    assert (holdout["delivered"], holdout["clickers"], holdout["ctr_uplift"]) == (
        str(experiment["holdout"]),
        "2",
        "",
    )
    assert (model["delivered"], model["clickers"], model["clicks"]) == (
        str(experiment["model"]),
        "5",
        "6",
    )
    assert (model["converters"], model["conversions"]) == ("2", "2")
    assert float(model["ctr_uplift_low"]) < float(model["ctr_uplift"])
    assert float(model["ctr_uplift"]) < float(model["ctr_uplift_high"])
    assert rows[-1]["clickers"] == "7"


def test_csv_over_all_runs_is_named_so(admin_client, db):
    bulletin = Bulletin.objects.create(slug="b", name="B", subject_template="Hi")

    response = admin_client.get(report_url(bulletin), {"format": "csv"})

    assert response["Content-Disposition"] == 'attachment; filename="b-report-all-runs.csv"'
    header = response.content.decode().splitlines()[0]
    assert header.startswith("section,name,delivered,openers,clickers,clicks,")


def sent_by_hand(run: BulletinRun, variant: Variant, *, people: int, clickers: int) -> None:
    """`people` deliveries of `run` in `variant`'s arm, the first `clickers` clicked once."""
    for n in range(people):
        user = EndUser.objects.create(external_id=f"{variant.name}-{n}", email=f"{n}@example.com")
        delivery = Delivery.objects.create(
            run=run, user=user, variant=variant, email=user.email, status=Delivery.Status.SENT
        )
        if n < clickers:
            Click.objects.create(delivery=delivery, user=user, run=run, variant=variant, position=1)


@pytest.fixture
def two_arms(db):
    bulletin = Bulletin.objects.create(slug="b", name="B", subject_template="Hi")
    control = Variant.objects.create(bulletin=bulletin, name="a", share=50, is_control=True)
    variant = Variant.objects.create(bulletin=bulletin, name="b", share=50)
    run = BulletinRun.objects.create(bulletin=bulletin, run_key="k")
    return run, control, variant


def test_an_uplift_whose_interval_excludes_0_is_marked_significant(admin_client, two_arms):
    run, control, variant = two_arms
    sent_by_hand(run, control, people=40, clickers=2)
    sent_by_hand(run, variant, people=40, clickers=20)

    page = admin_client.get(report_url(run.bulletin)).content.decode()

    assert (
        '<span class="uplift-figures significant">'
        "+900.0% (95% CI +150.1% to +3898.4%), p &lt; 0.001</span>"
    ) in page
    assert '<strong class="significant-mark">significant</strong>' in page


def test_an_arm_nobody_was_sent_to_shows_why_it_has_no_uplift(admin_client, two_arms):
    run, control, _ = two_arms
    sent_by_hand(run, control, people=1, clickers=0)

    page = admin_client.get(report_url(run.bulletin)).content.decode()

    assert "no trials in the variant arm" in page
    assert not UPLIFT.search(page)
    assert "b: nothing delivered" in page  # the chart's bar for it
