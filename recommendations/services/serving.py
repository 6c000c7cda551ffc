"""A placement's list as it is served to users (bulletins, and the API): the stored list of
the source the placement (or an experiment arm) asks for, a blend of both sources, or the
placement's fallbacks in order, computed on the spot for users nothing was stored for.

Every served item carries the `source` it came from (`inhouse`, `personalize`, `trending`),
so clicks can be traced back to it.
"""

from collections.abc import Collection
from dataclasses import dataclass, field

import pandas as pd

from recommendations import selectors
from recommendations.models import EndUser, Placement, RecommendationSet, RecommendationSource
from recommendations.services.placements import placement_lists, placement_pipeline
from recommendations.services.training import active_model

TRENDING = "trending"
STORED_SOURCES = (RecommendationSource.IN_HOUSE.value, RecommendationSource.PERSONALIZE.value)


@dataclass(frozen=True)
class ServedList:
    items: list[dict] = field(default_factory=list)
    fallback: bool = False  # not from the source that was asked for


def blend(first: list[dict], second: list[dict], *, second_share: float, k: int) -> list[dict]:
    """Interleave two ranked lists so that `second_share` of the first k positions come from
    `second` (spread evenly, not bunched), skipping items already taken; when one list runs
    out the other fills the rest."""
    taken, out = set(), []
    lists = [list(first), list(second)]
    for position in range(k):
        # position p goes to `second` when the running quota of second's share steps up
        wants_second = int((position + 1) * second_share) > int(position * second_share)
        order = (1, 0) if wants_second else (0, 1)
        for index in order:
            while lists[index] and lists[index][0]["item_id"] in taken:
                lists[index].pop(0)
            if lists[index]:
                entry = lists[index].pop(0)
                taken.add(entry["item_id"])
                out.append(entry)
                break
        else:
            break
    return out


def _tagged(items: list[dict], source: str) -> list[dict]:
    return [{**entry, "source": source} for entry in items]


def _tag_computed(items: list[dict]) -> list[dict]:
    return [
        {**entry, "source": TRENDING if entry.get("reason") == TRENDING else "inhouse"}
        for entry in items
    ]


def _stored(placement: Placement, user_pks: Collection[int]) -> dict[str, dict[int, list[dict]]]:
    """source -> user pk -> stored non-empty list."""
    stored: dict[str, dict[int, list[dict]]] = {source: {} for source in STORED_SOURCES}
    rows = RecommendationSet.objects.filter(
        placement=placement, user_id__in=list(user_pks), source__in=STORED_SOURCES
    ).values_list("source", "user_id", "items")
    for source, user_pk, items in rows:
        if items:
            stored[source][user_pk] = items
    return stored


def _computed(
    placement: Placement, user_pks: list[int], *, non_personalized: bool, item_id: str | None
) -> dict:
    """Lists computed now through the placement's candidates, rules and fallbacks (for users
    or placements nothing was stored for). Without an active model, or for the holdout,
    everyone is treated as non-personalized: trending through the rules."""
    users = selectors.user_keys_frame(EndUser.objects.filter(pk__in=user_pks))
    if users.empty:
        return {}
    found = active_model()
    if found is None or non_personalized:
        users = users.assign(opt_out=True)
        model = None
    else:
        model = found[1]
    lists = placement_lists(
        placement, model, users, segments=selectors.segment_members(users), item_id=item_id
    )
    by_external = dict(zip(users["external_id"], users["pk"], strict=True))
    return {int(by_external[user]): items for user, items in lists.items() if items}


def visitor_list(placement: Placement, *, item_id: str | None = None) -> ServedList:
    """The list for a visitor the service knows nothing about yet: the same for every such
    visitor (trending through the rules, or the page item's similar items), so it is cached
    once per placement and item rather than per visitor."""
    found = active_model()
    similar = placement.strategy == Placement.Strategy.SIMILAR_ITEMS and found is not None
    visitor = pd.DataFrame({"pk": [0], "external_id": [""], "opt_out": [not similar]})
    model = found[1] if found is not None else None
    items = placement_lists(placement, model, visitor, segments={}, item_id=item_id).get("", [])
    return ServedList(_tag_computed(items), fallback=placement.strategy != "trending")


def served_lists(
    *,
    placement: Placement,
    user_pks: Collection[int],
    source: str | None = None,
    item_id: str | None = None,
) -> dict[int, ServedList]:
    """Each user's served list for the placement. `source` overrides the placement's:
    `inhouse`, `personalize`, `blend`, or `trending` (the non-personalized holdout); `item_id`
    is the page's item for similar-items placements. Users for whom even the fallbacks find
    nothing are left out."""
    wanted = source or placement.source
    user_pks = [int(pk) for pk in user_pks]
    served: dict[int, ServedList] = {}
    if wanted == TRENDING:
        computed = _computed(placement, user_pks, non_personalized=True, item_id=item_id)
        return {pk: ServedList(_tagged(items, TRENDING)) for pk, items in computed.items()}

    batch = placement.strategy == Placement.Strategy.PERSONALIZED
    stored = _stored(placement, user_pks) if batch else {s: {} for s in STORED_SOURCES}
    inhouse, personalize = stored["inhouse"], stored["personalize"]
    missing = []
    for pk in user_pks:
        if wanted == Placement.Source.BLEND and pk in inhouse and pk in personalize:
            items = blend(
                _tagged(inhouse[pk], "inhouse"),
                _tagged(personalize[pk], "personalize"),
                second_share=placement.personalize_share,
                k=placement.count,
            )
            served[pk] = ServedList(items)
        elif wanted in stored and pk in stored[wanted]:
            served[pk] = ServedList(_tagged(stored[wanted][pk], wanted))
        else:
            missing.append(pk)

    for name in placement.fallbacks:
        if not missing:
            break
        if name in stored and name != wanted:
            found = [pk for pk in missing if pk in stored[name]]
            for pk in found:
                served[pk] = ServedList(_tagged(stored[name][pk], name), fallback=True)
            missing = [pk for pk in missing if pk not in served]
    if missing:
        # Nothing stored (a new user, a placement computed on demand): compute through the
        # in-house path, whose own fallbacks end in trending.
        computed = _computed(placement, missing, non_personalized=False, item_id=item_id)
        for pk, items in computed.items():
            tagged = _tag_computed(items)
            expected_source = TRENDING if placement.strategy == "trending" else wanted
            fallback = batch or any(entry["source"] != expected_source for entry in tagged)
            served[pk] = ServedList(tagged, fallback=fallback)
    return served


def recently_sent_days(placement: Placement) -> int:
    """How many past emails the placement's `exclude_recently_sent` rules look back (0: none)."""
    pipeline = placement_pipeline(placement)
    return max(
        (int(rule.days or 0) for rule in pipeline.rules if rule.kind == "exclude_recently_sent"),
        default=0,
    )
