"""A local stand-in for Amazon Personalize, for the demo and tests only: it writes a batch
inference output file exactly as Personalize does, from a differently configured in-house
model, so the real parser, the rules and the comparison report run on it. Its lists are
labelled as coming from this double, never passed off as Personalize's."""

import json

from integrations.personalize.batch import parse_batch_output
from recommendations import selectors
from recommendations.engine import HybridRecommender
from recommendations.models import EndUser, ModelVersion
from recommendations.services.personalize import personalize_lists_store

DOUBLE_PARAMS = {
    "cf_algorithm": "als",
    "als_factors": 32,
    "content_weight": 0.0,
    "popularity_weight": 0.2,
    "random_state": 1,
}


def personalize_double_output(*, num_results: int = 25) -> bytes:
    """Batch inference output lines (`{"input", "output", "error"}`) for every user."""
    interactions = selectors.interactions_frame()
    model = HybridRecommender(**DOUBLE_PARAMS).fit(interactions, items=selectors.items_frame())
    users = list(EndUser.objects.order_by("pk").values_list("external_id", flat=True))
    recs = model.recommend(users, k=num_results)
    lines = [
        json.dumps(
            {
                "input": {"userId": str(user_id)},
                "output": {
                    "recommendedItems": group["item_id"].astype(str).tolist(),
                    "scores": [round(float(score), 6) for score in group["score"]],
                },
                "error": None,
            }
        )
        for user_id, group in recs.groupby("user_id", sort=False)
    ]
    return "\n".join(lines).encode()


def personalize_double_run() -> int:
    """Store the double's lists as the Personalize source would be stored; returns the count."""
    output = parse_batch_output(personalize_double_output())
    version = ModelVersion.objects.create(
        source=ModelVersion.Source.PERSONALIZE,
        status=ModelVersion.Status.READY,
        params={"test_double": DOUBLE_PARAMS},
        decision="demo: output written by a local test double, not by Amazon Personalize",
    )
    return personalize_lists_store(recommendations=output.recommendations, model_version=version)
