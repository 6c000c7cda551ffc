"""In-house vs Amazon Personalize on one placement: how alike their lists are, what each
covers, what only Personalize finds, over every user with both lists or a sample of them."""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.db.models import Count

from recommendations.engine.comparison import ComparisonReport, compare_lists
from recommendations.engine.errors import EngineError
from recommendations.models import Interaction, Item, Placement, RecommendationSet

HISTOGRAM_BINS = 10


class NothingToCompare(Exception):
    """One of the two sources has no lists for this placement yet."""


@dataclass
class SourceComparison:
    placement: Placement
    report: ComparisonReport
    users_compared: int
    histogram: list[dict]  # overlap bins: label, users, share
    only_personalize: list[dict]  # item_id, title, users
    only_inhouse: list[dict]


def sources_compare(
    *, placement: Placement, sample: int | None = None, seed: int = 0
) -> SourceComparison:
    inhouse = _lists(placement, RecommendationSet.Source.IN_HOUSE)
    personalize = _lists(placement, RecommendationSet.Source.PERSONALIZE)
    if inhouse.empty or personalize.empty:
        missing = "in-house" if inhouse.empty else "Amazon Personalize"
        raise NothingToCompare(f"No {missing} lists for {placement} yet.")
    if sample:
        common = np.intersect1d(inhouse["user_id"].unique(), personalize["user_id"].unique())
        chosen = np.random.default_rng(seed).permutation(common)[:sample]
        inhouse = inhouse[inhouse["user_id"].isin(chosen)]
        personalize = personalize[personalize["user_id"].isin(chosen)]
    popularity = pd.Series(
        dict(Interaction.objects.values_list("item__external_id").annotate(n=Count("pk")))
    )
    try:
        report = compare_lists(
            inhouse,
            personalize,
            k=placement.count,
            catalogue_size=Item.objects.count(),
            item_popularity=popularity,
        )
    except EngineError as error:
        raise NothingToCompare(str(error)) from None
    return SourceComparison(
        placement=placement,
        report=report,
        users_compared=len(report.per_user),
        histogram=_histogram(report.per_user["overlap"]),
        only_personalize=_titled(report.only_b),
        only_inhouse=_titled(report.only_a),
    )


def _lists(placement: Placement, source: str) -> pd.DataFrame:
    rows = RecommendationSet.objects.filter(placement=placement, source=source).values_list(
        "user__external_id", "items"
    )
    return pd.DataFrame(
        [
            (user_id, entry["item_id"], rank)
            for user_id, items in rows
            for rank, entry in enumerate(items, start=1)
        ],
        columns=["user_id", "item_id", "rank"],
    )


def _histogram(overlap: pd.Series) -> list[dict]:
    counts, edges = np.histogram(overlap.to_numpy(dtype=float), bins=HISTOGRAM_BINS, range=(0, 1))
    total = max(int(counts.sum()), 1)
    return [
        {"label": f"{low:.0%}–{high:.0%}", "users": int(n), "share": n / total}
        for low, high, n in zip(edges[:-1], edges[1:], counts, strict=True)
    ]


def _titled(frame: pd.DataFrame, limit: int = 20) -> list[dict]:
    top = frame.head(limit)
    titles = dict(
        Item.objects.filter(external_id__in=top["item_id"].astype(str).tolist()).values_list(
            "external_id", "title"
        )
    )
    return [
        {"item_id": item_id, "title": titles.get(str(item_id), item_id), "users": int(users)}
        for item_id, users in zip(top["item_id"], top["users"], strict=True)
    ]
