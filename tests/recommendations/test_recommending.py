import time

import pandas as pd
import pytest
from django.core.cache import cache
from django.core.management import call_command
from rest_framework.test import APIClient

from recommendations.models import (
    EndUser,
    Item,
    RecommendationRun,
    RecommendationSet,
)
from recommendations.services import recommending
from recommendations.services.api_keys import api_key_create
from recommendations.services.recommending import (
    recommendation_run_start,
    recommendation_shard_compute,
    recommendations_refresh_user,
)
from recommendations.tasks import recommendations_compute_all_task
from recsite.cache_keys import recommendations_cache_key

pytestmark = pytest.mark.django_db


def _sets(placement_slug: str = "for-you") -> pd.DataFrame:
    rows = RecommendationSet.objects.filter(placement__slug=placement_slug).values_list(
        "user__external_id", "items"
    )
    return pd.DataFrame(
        [(user, entry["item_id"]) for user, items in rows for entry in items],
        columns=["user_id", "item_id"],
    )


def test_every_user_gets_a_list_per_placement_in_the_database_and_the_cache(
    trained, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("recommend", "--all", "--shard-users", "70", "-v0")

    run = RecommendationRun.objects.get()
    users = EndUser.objects.count()
    assert run.status == RecommendationRun.Status.DONE
    assert run.shards == -(-users // 70) and run.shards_done == run.shards
    assert run.lists_written == 2 * users
    assert RecommendationSet.objects.filter(placement__slug="for-you").count() == users
    newsletter = RecommendationSet.objects.filter(placement__slug="newsletter")
    assert {len(s.items) for s in newsletter} == {4}
    user = EndUser.objects.order_by("pk").first()
    cached = cache.get(
        recommendations_cache_key(placement_slug="for-you", user_external_id=user.external_id)
    )
    stored = RecommendationSet.objects.get(user=user, placement__slug="for-you")
    assert cached["items"] == stored.items and len(stored.items) == 10


def test_lists_follow_the_planted_tastes(trained):
    call_command("recommend", "--all", "-v0")
    recommended = _sets()
    recommended = recommended[recommended["user_id"].isin(trained.tastes["user_id"])]
    most_popular = trained.interactions["ITEM_ID"].value_counts().index[:10]
    popular = pd.MultiIndex.from_product(
        [recommended["user_id"].unique(), most_popular], names=["user_id", "item_id"]
    ).to_frame(index=False)

    share = trained.topic_share(recommended)
    assert share > 0.6
    assert share > 2 * trained.topic_share(popular)


def test_lists_explain_themselves(trained):
    call_command("recommend", "--all", "-v0")
    entries = [entry for s in RecommendationSet.objects.all() for entry in s.items]
    assert {entry["reason"] for entry in entries} >= {"collaborative"}
    assert any(entry["because_item_id"] for entry in entries)


def test_unavailable_items_never_appear(trained):
    popular = trained.interactions["ITEM_ID"].value_counts().index[:5].tolist()
    Item.objects.filter(external_id__in=popular).update(available=False)
    call_command("recommend", "--all", "-v0")
    assert not set(_sets()["item_id"]) & set(popular)


def test_seen_items_are_not_recommended(trained):
    call_command("recommend", "--all", "-v0")
    seen = set(zip(trained.interactions["USER_ID"], trained.interactions["ITEM_ID"], strict=True))
    recommended = set(zip(*(_sets()[c] for c in ("user_id", "item_id")), strict=True))
    assert not seen & recommended


def test_opted_out_users_get_the_same_non_personalized_list(trained):
    EndUser.objects.filter(external_id__in=["user-00001", "user-00002"]).update(
        personalization_opt_out=True
    )
    call_command("recommend", "--all", "-v0")
    lists = {
        s.user.external_id: [e["item_id"] for e in s.items]
        for s in RecommendationSet.objects.filter(
            placement__slug="for-you", user__personalization_opt_out=True
        ).select_related("user")
    }
    assert lists["user-00001"] == lists["user-00002"]


def test_a_redelivered_shard_writes_the_same_rows_again(trained):
    run, shards = recommendation_run_start(shard_users=1000)
    recommendation_shard_compute(run_id=run.pk, shard=shards[0])
    before = sorted(RecommendationSet.objects.values_list("user_id", "placement_id", "items"))
    recommendation_shard_compute(run_id=run.pk, shard=shards[0])
    after = sorted(RecommendationSet.objects.values_list("user_id", "placement_id", "items"))
    assert before == after
    run.refresh_from_db()
    assert run.shards_done == 1 and run.lists_written == len(before)


@pytest.mark.django_db(transaction=True)
def test_lists_are_written_in_chunks_with_a_rest_after_each(trained, settings, monkeypatch):
    settings.RECOMMEND_WRITE_CHUNK = 40
    settings.RECOMMEND_WRITE_PAUSE_RATIO = 2.0
    pauses: list[float] = []
    monkeypatch.setattr(recommending.time, "sleep", pauses.append)

    call_command("recommend", "--all", "-v0")

    users = list(EndUser.objects.order_by("pk"))
    # one shard, so a rest after every chunk but its last
    assert len(pauses) == -(-len(users) // 40) - 1 and all(pause > 0 for pause in pauses)
    stored = dict(
        RecommendationSet.objects.filter(placement__slug="for-you").values_list("user_id", "items")
    )
    assert len(stored) == len(users)
    for user in users:
        key = recommendations_cache_key(placement_slug="for-you", user_external_id=user.external_id)
        assert cache.get(key)["items"] == stored[user.pk]


def test_no_rest_inside_a_callers_transaction(trained, settings, monkeypatch):
    settings.RECOMMEND_WRITE_CHUNK = 40
    settings.RECOMMEND_WRITE_PAUSE_RATIO = 2.0
    pauses: list[float] = []
    monkeypatch.setattr(recommending.time, "sleep", pauses.append)

    call_command("recommend", "--all", "-v0")  # the test's transaction is open around it

    assert pauses == []
    assert RecommendationSet.objects.filter(placement__slug="for-you").count() == (
        EndUser.objects.count()
    )


def test_new_events_refresh_that_users_list(trained, django_capture_on_commit_callbacks):
    call_command("recommend", "--all", "-v0")
    user = EndUser.objects.get(external_id="user-00005")
    before = [
        e["item_id"]
        for e in RecommendationSet.objects.get(user=user, placement__slug="for-you").items
    ]
    _, key = api_key_create(name="site", kind="secret")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    events = [
        {
            "user_id": "user-00005",
            "item_id": item_id,
            "event_type": "purchase",
            "event_id": f"refresh-{item_id}",
        }
        for item_id in before[:3]
    ]

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/events/", events, format="json")

    assert response.status_code == 200
    after = [
        e["item_id"]
        for e in RecommendationSet.objects.get(user=user, placement__slug="for-you").items
    ]
    assert not set(before[:3]) & set(after)  # just consumed: they drop out


def test_unknown_visitor_gets_a_list_from_their_first_events(trained):
    visitor = EndUser.objects.create(external_id="visitor-1", is_anonymous=True)
    items = [i for i in Item.objects.all() if i.categories and i.categories[0] == "Cooking"][:4]
    from recommendations.services.events import events_ingest

    events_ingest(
        events=[
            {
                "user_id": "visitor-1",
                "item_id": i.external_id,
                "event_type": "view",
                "event_id": f"v-{i.pk}",
            }
            for i in items
        ]
    )
    assert recommendations_refresh_user(user_pk=visitor.pk) == 2
    recommended = RecommendationSet.objects.get(user=visitor, placement__slug="for-you").items
    topics = [Item.objects.get(external_id=e["item_id"]).categories[0] for e in recommended]
    assert topics.count("Cooking") >= 5


def test_compute_all_fans_out_over_shards_on_a_real_worker(trained, celery_worker_on_redis):
    run_id = recommendations_compute_all_task.delay(shard_users=60).get(timeout=60)
    deadline = time.monotonic() + 120
    run = RecommendationRun.objects.get(pk=run_id)
    while run.status != RecommendationRun.Status.DONE and time.monotonic() < deadline:
        time.sleep(0.5)
        run.refresh_from_db()
    assert run.status == RecommendationRun.Status.DONE
    assert run.shards > 1 and run.shards_done == run.shards
    assert RecommendationSet.objects.count() == 2 * EndUser.objects.count()


def test_the_batch_never_brings_back_what_a_user_consumed_since_the_fit(trained, settings):
    settings.REALTIME_REFRESH = False  # the batch alone must keep them out
    call_command("recommend", "--all", "-v0")
    users = list(EndUser.objects.filter(is_anonymous=False).order_by("pk")[:40])
    consumed = {}
    events = []
    for user in users:
        shown = RecommendationSet.objects.get(user=user, placement__slug="for-you").items
        consumed[user.external_id] = {entry["item_id"] for entry in shown[:2]}
        events += [
            {"user_id": user.external_id, "item_id": item, "event_type": "purchase"}
            for item in consumed[user.external_id]
        ]
    from recommendations.services.events import events_ingest

    assert events_ingest(events=events).accepted == len(events)

    call_command("recommend", "--all", "-v0")

    for user in users:
        lists = RecommendationSet.objects.filter(user=user).values_list("items", flat=True)
        served = {entry["item_id"] for items in lists for entry in items}
        assert not served & consumed[user.external_id], user.external_id


def test_a_shard_that_fails_in_process_fails_the_run_with_the_reason(trained, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(recommending, "lists_write", broken)
    with pytest.raises(RuntimeError):
        recommending.recommendations_compute_all_in_process()
    run = RecommendationRun.objects.get()
    assert run.status == RecommendationRun.Status.FAILED
    assert "disk full" in run.error and run.finished_at is not None


def test_a_shard_that_fails_for_good_on_a_worker_fails_the_run(
    trained, celery_worker_on_redis, monkeypatch
):
    real = recommending.recommendation_shard_compute

    def one_broken_shard(*, run_id, shard):
        if shard.pk_from == run.shard_bounds[1][0]:
            raise ValueError("bad shard")
        return real(run_id=run_id, shard=shard)

    monkeypatch.setattr("recommendations.tasks.recommendation_shard_compute", one_broken_shard)
    run, _ = recommending.recommendation_run_start(shard_users=100)
    from recommendations.tasks import recommendation_run_dispatch

    recommendation_run_dispatch(run)

    deadline = time.monotonic() + 60
    while run.status == RecommendationRun.Status.RUNNING and time.monotonic() < deadline:
        time.sleep(0.3)
        run.refresh_from_db()
    assert run.status == RecommendationRun.Status.FAILED
    assert "bad shard" in run.error
    assert run.shards_done == run.shards - 1  # the others finished; none counted twice


def test_a_stalled_run_is_resumed_by_beat_with_the_shards_left(trained, monkeypatch):
    from recommendations.tasks import recommendation_runs_recover_task

    run, shards = recommending.recommendation_run_start(shard_users=100)
    recommending.recommendation_shard_compute(run_id=run.pk, shard=shards[0])
    computed = []
    real = recommending.recommendation_shard_compute

    def counting(*, run_id, shard):
        computed.append(shard)
        return real(run_id=run_id, shard=shard)

    monkeypatch.setattr("recommendations.tasks.recommendation_shard_compute", counting)
    assert recommendation_runs_recover_task() == []  # its lease has not run out

    RecommendationRun.objects.filter(pk=run.pk).update(
        heartbeat_at=run.heartbeat_at - pd.Timedelta(hours=2)
    )
    assert recommendation_runs_recover_task() == [run.pk]

    run.refresh_from_db()
    assert run.status == RecommendationRun.Status.DONE
    assert computed == shards[1:]  # the shard done before was not computed again
    assert run.shards_done == run.shards
    assert RecommendationSet.objects.filter(placement__slug="for-you").count() == (
        EndUser.objects.count()
    )


def test_a_failed_run_is_neither_finished_nor_resumed(trained):
    from recommendations.tasks import recommendation_runs_recover_task

    run, _ = recommending.recommendation_run_start(shard_users=100)
    recommending.recommendation_run_fail(run_id=run.pk, reason="first reason")
    recommending.recommendation_run_fail(run_id=run.pk, reason="second reason")
    RecommendationRun.objects.filter(pk=run.pk).update(
        heartbeat_at=run.heartbeat_at - pd.Timedelta(hours=2)
    )

    assert recommendation_runs_recover_task() == []
    assert recommending.recommendation_run_finish(run_id=run.pk).status == "failed"
    run.refresh_from_db()
    assert run.error == "first reason"
