"""Erasure (`python manage.py forget_user ID`): the user's events, lists, memberships,
deliveries, clicks, opens, conversions and unsubscribes go, their cached lists too; the
bulletin's experiment report and its runs' counts keep the same totals; other users are
untouched; a dry run writes nothing; a failure midway leaves everything as it was."""

import datetime as dt
import io

import pytest
from django.apps import apps
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.core.management import CommandError, ManagementUtility, call_command
from django.utils import timezone

from bulletins import models as bulletin_models
from bulletins.models import (
    Bulletin,
    BulletinBlock,
    BulletinRun,
    Click,
    Conversion,
    Delivery,
    Open,
    Unsubscribe,
    Variant,
)
from bulletins.services.audience import audience_screen, unsubscribed_pks
from bulletins.services.reports import experiment_report, report_rows
from bulletins.services.runs import run_counts_refresh
from recommendations.models import (
    EndUser,
    EventType,
    Interaction,
    Item,
    Placement,
    RecommendationSet,
    Segment,
    SegmentMembership,
)
from recommendations.services.erasure import user_cache_keys, user_forget, users_forget
from recommendations.signals import user_forgetting
from recsite.cache_keys import recommendations_cache_key, served_cache_key

pytestmark = pytest.mark.django_db


NOW = timezone.now()
DAY_1, DAY_2 = NOW - dt.timedelta(days=3), NOW - dt.timedelta(days=1)


def _user(external_id: str) -> EndUser:
    return EndUser.objects.create(
        external_id=external_id, email=f"{external_id}@example.com", email_opt_in=True
    )


def _event(user, item, kind, when, event_id) -> Interaction:
    return Interaction.objects.create(
        event_id=event_id,
        user=user,
        item=item,
        event_type=EventType.objects.get(name=kind),
        event_value=30.0 if kind == "purchase" else None,
        timestamp=when,
    )


def _delivery(run, user, variant, status=Delivery.Status.SENT) -> Delivery:
    items = [
        {"item_id": f"item-{n}", "block": 1, "position": n, "placement": "for-you",
         "source": "inhouse", "reason": "collaborative"}
        for n in (1, 2, 3)
    ]  # fmt: skip
    return Delivery.objects.create(
        run=run,
        user=user,
        variant=variant,
        email=user.email,
        items=items,
        status=status,
        sent_at=run.started_at if status == Delivery.Status.SENT else None,
    )


def _click(delivery, position, when, *, human=True, item=None) -> Click:
    return Click.objects.create(
        delivery=delivery,
        user=delivery.user,
        run=delivery.run,
        variant=delivery.variant,
        item=item,
        position=position,
        source="inhouse",
        is_human=human,
        is_first=human,
        created_at=when,
    )


def _conversion(click, event) -> Conversion:
    return Conversion.objects.create(
        interaction=event,
        click=click,
        user=event.user,
        channel=click.channel,
        run=click.run,
        variant=click.variant,
        placement=click.placement,
        source=click.source,
        position=click.position,
        event_type=event.event_type.name,
        value=event.event_value,
        converted_at=event.timestamp,
    )


@pytest.fixture
def readers(db):
    """Alice (to be forgotten), Bob and Carol, in a bulletin's two arms over two runs, with
    opens, human and machine clicks, repeated clicks, conversions, a widget click, lists,
    a segment, an unsubscribe and cached lists."""
    alice, bob, carol = (_user(name) for name in ("alice", "bob", "carol"))
    items = [
        Item.objects.create(external_id=f"item-{n}", url=f"https://shop.example/{n}")
        for n in (1, 2, 3)
    ]
    for_you = Placement.objects.get(slug="for-you")
    Placement.objects.create(slug="similar", name="Similar", strategy="similar_items")
    bulletin = Bulletin.objects.create(slug="weekly", name="Weekly", subject_template="Hi")
    BulletinBlock.objects.create(bulletin=bulletin, title="For you", placement=for_you, count=3)
    holdout = Variant.objects.create(
        bulletin=bulletin, name="holdout", share=50, source="trending", is_control=True
    )
    model = Variant.objects.create(bulletin=bulletin, name="model", share=50, source="inhouse")
    first = BulletinRun.objects.create(bulletin=bulletin, run_key="first", status="done")
    second = BulletinRun.objects.create(bulletin=bulletin, run_key="second", status="sending")
    BulletinRun.objects.filter(pk=first.pk).update(started_at=DAY_1 - dt.timedelta(hours=1))
    first.refresh_from_db()
    deliveries = {
        ("alice", 1): _delivery(first, alice, model),
        ("bob", 1): _delivery(first, bob, holdout),
        ("carol", 1): _delivery(first, carol, model),
        ("alice", 2): _delivery(second, alice, model),
        ("bob", 2): _delivery(second, bob, holdout, Delivery.Status.FAILED),
        ("carol", 2): _delivery(second, carol, model, Delivery.Status.PENDING),
    }
    Open.objects.create(delivery=deliveries["alice", 1], created_at=DAY_1)
    Open.objects.create(delivery=deliveries["alice", 2], is_human=False, bot_reason="scanner")
    Open.objects.create(delivery=deliveries["bob", 1], created_at=DAY_1)
    alice_click = _click(deliveries["alice", 1], 1, DAY_1, item=items[0])
    _click(deliveries["alice", 1], 1, DAY_1 + dt.timedelta(minutes=5), item=items[0])
    _click(deliveries["alice", 2], 2, DAY_2, item=items[1])
    carol_click = _click(deliveries["carol", 1], 1, DAY_1, item=items[0])
    _click(deliveries["bob", 1], 3, DAY_1, human=False, item=items[2])
    widget_click = Click.objects.create(
        channel=Click.Channel.WIDGET, user=alice, placement=for_you, item=items[2], position=1
    )
    _event(alice, items[0], "view", DAY_1, "alice-view")
    _conversion(alice_click, _event(alice, items[0], "purchase", DAY_1, "alice-buy"))
    _conversion(widget_click, _event(alice, items[2], "purchase", DAY_2, "alice-buy-2"))
    _conversion(carol_click, _event(carol, items[0], "purchase", DAY_2, "carol-buy"))
    _event(bob, items[1], "view", DAY_1, "bob-view")
    segment = Segment.objects.create(slug="readers", name="Readers")
    for user in (alice, bob):
        RecommendationSet.objects.create(
            user=user, placement=for_you, items=[{"item_id": "item-1"}], computed_at=NOW
        )
        SegmentMembership.objects.create(segment=segment, user=user)
        for key in _cache_keys(user.external_id):
            cache.set(key, {"items": []})
    Unsubscribe.objects.create(user=alice, bulletin=bulletin, delivery=deliveries["alice", 1])
    return {"alice": alice, "bob": bob, "carol": carol, "bulletin": bulletin,
            "runs": (first, second), "deliveries": deliveries}  # fmt: skip


def _rows_of(user: EndUser) -> dict[str, int]:
    return {
        "interactions": Interaction.objects.filter(user=user).count(),
        "lists": RecommendationSet.objects.filter(user=user).count(),
        "memberships": SegmentMembership.objects.filter(user=user).count(),
        "deliveries": Delivery.objects.filter(user=user).count(),
        "clicks": Click.objects.filter(user=user).count(),
        "opens": Open.objects.filter(delivery__user=user).count(),
        "conversions": Conversion.objects.filter(user=user).count(),
        "unsubscribes": Unsubscribe.objects.filter(user=user).count(),
        "user": EndUser.objects.filter(pk=user.pk).count(),
    }


def _every_table() -> dict[str, int]:
    return {
        model._meta.label: model.objects.count()
        for label in ("recommendations", "bulletins")
        for model in apps.get_app_config(label).get_models()
    }


def _reports(bulletin: Bulletin) -> dict:
    """The experiment report over all runs and per run, as CSV rows (counts, rates,
    intervals), with the days, and each run's counters after a recount."""
    runs = list(bulletin.runs.order_by("pk"))
    everything = {
        "all runs": report_rows(experiment_report(bulletin=bulletin)),
        "days": experiment_report(bulletin=bulletin).by_day,
    }
    for run in runs:
        report = experiment_report(bulletin=bulletin, run=run)
        everything[f"run {run.run_key}"] = (report_rows(report), report.by_day)
        counted = run_counts_refresh(run.pk)
        everything[f"counters {run.run_key}"] = (
            counted.deliveries, counted.sent, counted.failed, counted.cancelled,
        )  # fmt: skip
    return everything


def _cache_keys(external_id: str) -> list[str]:
    """A batch list, and a list served on an item page."""
    return [
        recommendations_cache_key(placement_slug="for-you", user_external_id=external_id),
        served_cache_key(
            placement_slug="similar",
            source="inhouse",
            user_external_id=external_id,
            item_id="item-1",
        ),
    ]


def _alice_cache_keys() -> list[str]:
    return _cache_keys("alice")


def test_forgetting_removes_the_users_events_lists_and_bulletin_rows(readers):
    alice = readers["alice"]
    assert all(_rows_of(alice).values())

    report = user_forget(user=alice)

    assert not any(_rows_of(alice).values())
    assert report.found and not report.dry_run
    assert report.removed == {
        "recommendations.Interaction": 3,
        "recommendations.RecommendationSet": 1,
        "recommendations.SegmentMembership": 1,
        "bulletins.Delivery": 2,
        "bulletins.Click": 4,  # three in emails, one in the widget
        "bulletins.Open": 2,
        "bulletins.Conversion": 2,
        "bulletins.Unsubscribe": 1,
        "recommendations.EndUser": 1,
    }
    assert not EndUser.objects.filter(external_id="alice").exists()


def test_the_reports_and_run_counts_keep_their_totals(readers):
    before = _reports(readers["bulletin"])
    assert before["counters first"] == (3, 3, 0, 0)

    user_forget(user=readers["alice"])

    after = _reports(readers["bulletin"])
    assert after == before
    kept = bulletin_models.ErasedContribution.objects.all()
    assert kept.exists()
    assert not any(hasattr(row, "user_id") for row in kept)  # counts only, nobody's id


def test_the_counts_stay_right_when_more_users_are_forgotten(readers):
    before = _reports(readers["bulletin"])

    for name in ("alice", "carol", "bob"):
        user_forget(user=readers[name])

    assert not Delivery.objects.exists() and not Click.objects.exists()
    after = _reports(readers["bulletin"])
    # Carol's email of the second run was still pending: it will never go, so it now
    # counts as cancelled (deliveries, sent, failed, cancelled).
    assert before.pop("counters second") == (3, 1, 1, 0)
    assert after.pop("counters second") == (3, 1, 1, 1)
    assert after == before


def test_cached_lists_are_dropped_once_committed(readers, django_capture_on_commit_callbacks):
    assert all(cache.get(key) is not None for key in _alice_cache_keys())
    keys = user_cache_keys(readers["alice"])
    assert set(_alice_cache_keys()) <= set(keys)
    with django_capture_on_commit_callbacks(execute=True):
        report = user_forget(user=readers["alice"])
    assert report.cache_keys == len(keys)
    assert all(cache.get(key) is None for key in keys)
    bob_key = recommendations_cache_key(placement_slug="for-you", user_external_id="bob")
    assert cache.get(bob_key) is not None


def test_other_users_are_untouched(readers):
    bob, carol = readers["bob"], readers["carol"]
    before = (_rows_of(bob), _rows_of(carol))

    user_forget(user=readers["alice"])

    assert (_rows_of(bob), _rows_of(carol)) == before
    bob_key = served_cache_key(
        placement_slug="similar", source="inhouse", user_external_id="bob", item_id="item-1"
    )
    assert cache.get(bob_key) is not None


def test_a_dry_run_writes_nothing_and_reports_what_a_real_run_removes(
    readers, django_capture_on_commit_callbacks
):
    tables = _every_table()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        dry = user_forget(user=readers["alice"], dry_run=True)
    assert not callbacks  # nothing to run after a commit: no cache entry dropped
    assert _every_table() == tables
    assert all(cache.get(key) is not None for key in _alice_cache_keys())

    real = user_forget(user=readers["alice"])

    assert dry.dry_run and (dry.removed, dry.kept) == (real.removed, real.kept)


def test_a_failure_midway_leaves_everything_as_it_was(readers, django_capture_on_commit_callbacks):
    tables = _every_table()
    reports = _reports(readers["bulletin"])

    def fail(sender, **kwargs):
        raise RuntimeError("the disk is full")

    # Connected after bulletins' receiver, so it fails once the counts are kept and the
    # bulletin rows deleted, before the user's own rows go.
    user_forgetting.connect(fail, dispatch_uid="test-fail")
    try:
        with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
            user_forget(user=readers["alice"])
    finally:
        user_forgetting.disconnect(dispatch_uid="test-fail")

    assert _every_table() == tables
    assert _reports(readers["bulletin"]) == reports
    assert all(cache.get(key) is not None for key in _alice_cache_keys())


def test_forgetting_again_removes_and_adds_nothing(readers):
    alice = readers["alice"]
    user_forget(user=alice)
    tables, reports = _every_table(), _reports(readers["bulletin"])

    again = user_forget(user=alice)

    assert not again.found and again.removed == {} and again.kept == {}
    assert _every_table() == tables
    assert _reports(readers["bulletin"]) == reports


def test_an_unsubscribed_address_stays_suppressed_as_a_hash(readers):
    bulletin = readers["bulletin"]
    user_forget(user=readers["alice"])
    stored = list(bulletin_models.Suppression.objects.values_list("email_sha256", flat=True))
    assert stored and all("alice" not in value for value in stored)

    # The customer's CRM imports the address again, opted in, under a new id.
    again = EndUser.objects.create(
        external_id="crm-77", email=" Alice@Example.com", email_opt_in=True
    )

    assert unsubscribed_pks(bulletin, [again.pk]) == {again.pk}
    screening = audience_screen(bulletin, EndUser.objects.filter(pk=again.pk))
    assert screening.unsubscribed == 1 and not screening.recipients
    other = Bulletin.objects.create(slug="other", name="Other", subject_template="Hi")
    assert unsubscribed_pks(other, [again.pk]) == set()  # she left the weekly only


def test_a_user_without_bulletin_rows_is_forgotten_too(db):
    user = _user("dora")
    item = Item.objects.create(external_id="item-9")
    _event(user, item, "view", DAY_1, "dora-view")

    report = user_forget(user=user)

    assert report.removed["recommendations.Interaction"] == 1
    assert not EndUser.objects.filter(pk=user.pk).exists()
    assert not Interaction.objects.filter(event_id="dora-view").exists()


def test_a_cache_down_at_commit_leaves_the_erasure_done_and_says_so(
    db, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    from redis.exceptions import ConnectionError as RedisDown

    user = _user("gina")

    def down(keys):
        raise RedisDown("Connection refused")

    monkeypatch.setattr(cache, "delete_many", down)
    with django_capture_on_commit_callbacks(execute=True):
        user_forget(user=user)

    assert not EndUser.objects.filter(pk=user.pk).exists()
    assert "cached lists expire on their own" in caplog.text


def test_admin_history_of_the_user_no_longer_names_them(db):
    user = _user("erin")
    staff = User.objects.create_superuser("root", password="pw")
    LogEntry.objects.create(
        user=staff,
        content_type=ContentType.objects.get_for_model(EndUser),
        object_id=str(user.pk),
        object_repr=str(user),
        action_flag=CHANGE,
        change_message='[{"changed": {"fields": ["Email"]}}]',
    )

    user_forget(user=user)

    entry = LogEntry.objects.get()
    assert entry.object_repr == "(erased end user)" and "Email" in entry.change_message


def test_the_command_prints_what_it_removed(readers):
    out = io.StringIO()

    call_command("forget_user", "alice", stdout=out)

    printed = out.getvalue()
    assert "removed 2 deliveries" in printed and "removed 4 clicks" in printed
    assert "removed 3 interactions" in printed and "removed 1 end user" in printed
    assert "End user 'alice' is forgotten." in printed
    assert not EndUser.objects.filter(external_id="alice").exists()


def test_the_commands_dry_run_changes_nothing(readers):
    out = io.StringIO()
    tables = _every_table()

    call_command("forget_user", "alice", "--dry-run", stdout=out)

    assert "would remove 2 deliveries" in out.getvalue()
    assert "Dry run" in out.getvalue()
    assert _every_table() == tables


def test_an_unknown_id_is_a_clear_error_with_exit_code_1(db, capsys):
    with pytest.raises(CommandError, match="no end user with id 'nobody'"):
        call_command("forget_user", "nobody")
    with pytest.raises(SystemExit) as exited:
        ManagementUtility(["manage.py", "forget_user", "nobody"]).execute()
    assert exited.value.code == 1
    assert "no end user with id 'nobody'" in capsys.readouterr().err


def test_forgetting_several_users_for_admins_action(readers):
    reports = users_forget(users=EndUser.objects.filter(external_id__in=["alice", "carol"]))

    assert [report.external_id for report in reports] == ["alice", "carol"]
    assert list(EndUser.objects.values_list("external_id", flat=True)) == ["bob"]


def test_admins_forget_action_asks_first_then_erases(readers, admin_client):
    chosen = [readers["alice"].pk, readers["carol"].pk]
    form = {"action": "forget", "_selected_action": chosen}

    asked = admin_client.post("/admin/recommendations/enduser/", form)

    assert asked.status_code == 200 and b"cannot be undone" in asked.content
    assert EndUser.objects.count() == 3
    done = admin_client.post("/admin/recommendations/enduser/", {**form, "confirmed": "yes"})
    assert done.status_code == 302
    assert list(EndUser.objects.values_list("external_id", flat=True)) == ["bob"]


def test_marketers_cannot_forget_users(db, client):
    from django.contrib.auth.models import Group

    from recommendations.roles import MARKETERS

    marketer = User.objects.create_user("marketer", password="pw", is_staff=True)
    marketer.groups.add(Group.objects.get(name=MARKETERS))
    client.force_login(marketer)
    user = _user("frank")

    page = client.get("/admin/recommendations/enduser/")
    client.post(
        "/admin/recommendations/enduser/",
        {"action": "forget", "_selected_action": [user.pk], "confirmed": "yes"},
    )

    assert page.status_code == 200 and b"Forget selected users" not in page.content
    assert EndUser.objects.filter(pk=user.pk).exists()
