import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from recommendations.engine.presets import POPULARITY_PARAMS
from recommendations.models import Interaction, ModelVersion
from recommendations.services.training import TrainingError, active_model, model_version_train

pytestmark = pytest.mark.django_db


def test_first_version_is_measured_stored_and_activated(planted_catalogue):
    version = model_version_train()

    assert version.is_active and version.status == ModelVersion.Status.ACTIVE
    assert version.metrics["ndcg_at_k"] > 2 * version.baseline_metrics["ndcg_at_k"]
    assert version.data_size["interactions"] == Interaction.objects.count()
    assert version.params["event_weights"]["purchase"] == 5.0
    assert version.duration_seconds > 0
    loaded_version, model = active_model()
    assert loaded_version == version
    assert model.recommend(["user-00001"], k=5).shape[0] == 5


def test_worse_candidate_is_rejected_and_the_active_version_stays(planted_catalogue):
    good = model_version_train()
    worse = model_version_train(params=POPULARITY_PARAMS)

    good.refresh_from_db()
    assert good.is_active
    assert worse.status == ModelVersion.Status.REJECTED and not worse.is_active
    assert f"kept #{good.pk}" in worse.decision
    assert "worse on the same holdout" in worse.decision


def test_better_candidate_replaces_a_worse_active_version(planted_catalogue):
    worse = model_version_train(params=POPULARITY_PARAMS)
    better = model_version_train()

    worse.refresh_from_db()
    assert better.is_active and not worse.is_active
    assert "not worse on the same holdout" in better.decision


def test_training_on_too_little_data_fails_with_a_reason():
    with pytest.raises(TrainingError, match="at least 50 are needed"):
        model_version_train()
    failed = ModelVersion.objects.get()
    assert failed.status == ModelVersion.Status.FAILED
    assert "at least 50" in failed.decision
    assert not failed.is_active


def test_tuning_records_the_search_and_the_chosen_parameters(planted_catalogue):
    version = model_version_train(tune=True)
    assert version.metrics["search"]
    chosen = {row["ease_l2"] for row in version.metrics["search"][:1]}
    assert version.params["ease_l2"] in chosen


def test_admin_rolls_back_to_an_earlier_version(planted_catalogue, admin_client):
    first = model_version_train()
    second = model_version_train(params={"ease_l2": 200.0})
    active_before = ModelVersion.objects.get(is_active=True)
    older = first if active_before == second else second

    changelist = reverse("admin:recommendations_modelversion_changelist")
    chosen = {"action": "activate", "_selected_action": [older.pk]}

    asked = admin_client.post(changelist, chosen)
    assert asked.status_code == 200 and "Yes, make it active" in asked.content.decode()
    older.refresh_from_db()
    assert not older.is_active  # nothing changes until confirmed

    response = admin_client.post(changelist, {**chosen, "confirmed": "yes"}, follow=True)

    assert response.status_code == 200
    older.refresh_from_db()
    assert older.is_active
    assert ModelVersion.objects.filter(is_active=True).count() == 1
    assert "activated by" in older.decision
    # Its history keeps why it was activated each time: by training first, then by hand.
    assert [entry["why"] for entry in older.activations][-1].startswith("activated by")
    page = admin_client.get(reverse("admin:recommendations_modelversion_change", args=[older.pk]))
    assert "activated by" in page.content.decode()


def test_model_versions_list_shows_metrics(planted_catalogue, admin_client):
    model_version_train()
    page = admin_client.get(reverse("admin:recommendations_modelversion_changelist"))
    assert page.status_code == 200
    assert "nDCG@k" in page.content.decode()


def test_marketer_sees_versions_but_cannot_activate(planted_catalogue, client):
    from django.contrib.auth.models import Group

    from recommendations.roles import MARKETERS

    version = model_version_train(params=POPULARITY_PARAMS)
    ModelVersion.objects.filter(pk=version.pk).update(is_active=False, status="ready")
    marketer = User.objects.create_user("m", password="pw", is_staff=True)
    marketer.groups.add(Group.objects.get(name=MARKETERS))
    client.force_login(marketer)
    changelist = reverse("admin:recommendations_modelversion_changelist")
    assert client.get(changelist).status_code == 200
    client.post(changelist, {"action": "activate", "_selected_action": [version.pk]})
    assert not ModelVersion.objects.get(pk=version.pk).is_active
