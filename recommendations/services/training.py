"""Training in-house model versions on the database, and choosing which one serves.

A candidate is fitted on all events before a time cutoff and measured on the events after it
(the holdout), beside popularity and beside the active version's parameters fitted on the same
split: comparing on one split is the only fair comparison, since the data has grown since the
active version was measured. The served model is then refitted on all events. It becomes active
only if it is not worse than the active version on the primary metric.
"""

import logging
import tempfile
import time
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from integrations.storage import is_s3_uri, local_copy, put
from recommendations import selectors
from recommendations.engine import HybridRecommender
from recommendations.engine.evaluation import evaluate, search, temporal_split
from recommendations.engine.presets import POPULARITY_PARAMS, SEARCH_GRID
from recommendations.models import Interaction, ModelVersion
from recsite.data_generation import data_generation_forget

logger = logging.getLogger(__name__)

PRIMARY_METRIC = "ndcg_at_k"
HOLDOUT_SHARE = 0.1
MIN_INTERACTIONS = 50
METRIC_NAMES = ("precision_at_k", "recall_at_k", "ndcg_at_k", "map", "coverage", "novelty")


class TrainingError(Exception):
    """Training cannot run on the data as it is; the message says why."""


def model_version_train(
    *, params: dict | None = None, tune: bool = False, k: int = 10, random_state: int = 42
) -> ModelVersion:
    """Fit, measure and store a new in-house version; activate it if it is not worse."""
    started = time.monotonic()
    version = ModelVersion.objects.create(source=ModelVersion.Source.IN_HOUSE)
    try:
        _train(version, params or {}, tune=tune, k=k, random_state=random_state)
    except Exception as error:
        version.status = ModelVersion.Status.FAILED
        version.decision = f"Training failed: {error}"
        version.duration_seconds = round(time.monotonic() - started, 2)
        version.save()
        raise
    version.duration_seconds = round(time.monotonic() - started, 2)
    version.save(update_fields=["duration_seconds"])
    return version


def _train(version: ModelVersion, params: dict, *, tune: bool, k: int, random_state: int) -> None:
    # What the model will know: the batch leaves out of its lists what came after.
    version.last_interaction_pk = Interaction.objects.aggregate(newest=Max("pk"))["newest"]
    interactions = selectors.interactions_frame()
    if len(interactions) < MIN_INTERACTIONS:
        raise TrainingError(
            f"{len(interactions)} interactions; at least {MIN_INTERACTIONS} are needed to train"
        )
    items, users = selectors.items_frame(), selectors.user_attributes_frame()
    params = {"random_state": random_state, **selectors.event_weighting(), **params}
    train, holdout = temporal_split(interactions, HOLDOUT_SHARE, by_user=False)
    if train.empty or holdout.empty:
        raise TrainingError("all interactions share one timestamp; no time-based holdout")

    if tune:
        params, table = search(
            train,
            SEARCH_GRID,
            k=k,
            split="temporal",
            base_params=params,
            items=items,
            users=users,
            seed=random_state,
        )
        version.metrics["search"] = table.head(10).to_dict("records")

    def measure(model_params: dict) -> dict:
        result = evaluate(
            HybridRecommender(**model_params), train, holdout, k, items=items, users=users
        )
        return {name: round(float(result[name]), 5) for name in METRIC_NAMES}

    version.params = params
    version.metrics.update(measure(params), k=k)
    version.baseline_metrics = measure(
        {**POPULARITY_PARAMS, "event_weights": params["event_weights"]}
    )
    version.data_size = {
        "interactions": len(interactions),
        "users": int(interactions["user_id"].nunique()),
        "items": int(interactions["item_id"].nunique()),
        "catalogue": len(items),
        "holdout_interactions": len(holdout),
    }

    model = HybridRecommender(**params).fit(interactions, items=items, users=users)
    version.artifact = artifact_save(model, name=f"inhouse-{version.pk}")
    version.status = ModelVersion.Status.READY
    version.save()
    _decide(version, measure)


def _decide(version: ModelVersion, measure) -> None:
    active = ModelVersion.objects.filter(source=version.source, is_active=True).first()
    candidate = version.metrics[PRIMARY_METRIC]
    if active is None:
        model_version_activate(version=version, reason="first version: no active one to beat")
        return
    if active.params == version.params:
        # Same method, more data: the new fit can only be as good or more current.
        model_version_activate(
            version=version,
            reason=f"same parameters as #{active.pk}, refitted on the current data "
            f"({PRIMARY_METRIC} {candidate:.4f} on the holdout)",
        )
        return
    champion = measure(active.params)[PRIMARY_METRIC]
    comparison = f"{PRIMARY_METRIC} {candidate:.4f} vs {champion:.4f} for #{active.pk}'s parameters"
    if candidate >= champion:
        model_version_activate(
            version=version, reason=f"not worse on the same holdout: {comparison}"
        )
    else:
        version.status = ModelVersion.Status.REJECTED
        version.decision = f"kept #{active.pk}: worse on the same holdout ({comparison})"
        version.save(update_fields=["status", "decision"])


@transaction.atomic
def model_version_activate(*, version: ModelVersion, reason: str) -> ModelVersion:
    """Make `version` the one that serves its source; the previous one steps down."""
    if not version.artifact:
        raise TrainingError(f"model version #{version.pk} has no artifact to serve")
    ModelVersion.objects.select_for_update().filter(source=version.source, is_active=True).exclude(
        pk=version.pk
    ).update(is_active=False, status=ModelVersion.Status.READY)
    version.is_active = True
    version.status = ModelVersion.Status.ACTIVE
    version.activated_at = timezone.now()
    version.decision = reason
    version.activations = [
        *version.activations,
        {"at": version.activated_at.isoformat(timespec="seconds"), "why": reason},
    ]
    version.save(update_fields=["is_active", "status", "activated_at", "decision", "activations"])
    data_generation_forget()
    logger.info("activated %s: %s", version, reason)
    return version


def artifact_save(model: HybridRecommender, *, name: str) -> str:
    """Store the fitted model under ARTIFACT_ROOT (a folder or an s3:// prefix)."""
    root = settings.ARTIFACT_ROOT.rstrip("/")
    uri = f"{root}/models/{name}.joblib"
    if is_s3_uri(uri):
        with tempfile.TemporaryDirectory() as folder:
            put(uri, model.save(Path(folder) / "model.joblib"))
    else:
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
        model.save(uri)
    return uri


def active_model() -> tuple[ModelVersion, HybridRecommender] | None:
    """The active in-house version and its fitted model (loaded once per process)."""
    version = ModelVersion.objects.filter(
        source=ModelVersion.Source.IN_HOUSE, is_active=True
    ).first()
    if version is None:
        return None
    return version, model_load(version)


def model_load(version: ModelVersion) -> HybridRecommender:
    """The fitted model of a version, loaded once per process."""
    return _model_load(version.pk, version.artifact)


@lru_cache(maxsize=2)
def _model_load(version_pk: int, artifact: str) -> HybridRecommender:
    with local_copy(artifact) as path:
        return HybridRecommender.load(path)
