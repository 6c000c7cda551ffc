"""A placement's lists: candidates by strategy, then the marketer rules, for the batch path,
the online path (refresh, API) and the admin preview alike.

candidates (engine, by strategy) -> rules pipeline (filter, score, rerank, diversify, pin) -> list
"""

import datetime as dt
import logging
from functools import lru_cache

import numpy as np
import pandas as pd
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db.models import Count, Max
from django.utils import timezone

from recommendations import selectors
from recommendations.engine import HybridRecommender
from recommendations.engine.errors import EngineError
from recommendations.engine.rules import Rule as EngineRule
from recommendations.engine.rules import RulePipeline, rules_conflicts
from recommendations.models import Interaction, Item, Placement, Rule
from recommendations.services.rules import condition_to_engine
from recsite.errors import CACHE_ERRORS

logger = logging.getLogger(__name__)

OVERFETCH = 5  # candidates per shown item, so that filters leave enough to show
MIN_CANDIDATES = 50
TRENDING_POOL = 500
TRENDING_SECONDS = 300
RULE_FIELDS = {
    "multiplier": ("boost", "bury", "freshness_boost"),
    "position": ("pin",),
    "cap": ("cap_per_category",),
    "days": ("freshness_boost", "exclude_recently_sent"),
}


def rule_to_engine(rule: Rule, conditions=None) -> EngineRule:
    """The engine's rule for a database rule; ValidationError names the field at fault."""
    conditions = rule.conditions.all() if conditions is None else conditions
    fields = {
        name: getattr(rule, name) if rule.kind in kinds else None
        for name, kinds in RULE_FIELDS.items()
    }
    try:
        return EngineRule(
            id=rule.pk,
            name=rule.name,
            kind=rule.kind,
            conditions=tuple(condition_to_engine(condition) for condition in conditions),
            item_id=rule.pin_item.external_id if rule.kind == "pin" and rule.pin_item else None,
            priority=rule.priority,
            segment=rule.segment_id,
            starts_at=rule.starts_at,
            ends_at=rule.ends_at,
            **fields,
        )
    except EngineError as error:
        raise ValidationError(str(error).replace(f"rule {rule.name!r}: ", "")) from None


def placement_rules(placement: Placement) -> list[EngineRule]:
    rules = placement.rules.filter(is_active=True).select_related("pin_item")
    return [rule_to_engine(rule) for rule in rules.prefetch_related("conditions")]


def rule_catalogue_check(rule: EngineRule) -> None:
    """Refuse a rule the catalogue cannot evaluate (a price compared with a word, say),
    naming the condition's value: ValidationError, for the admin form."""
    try:
        RulePipeline.compile([rule], selectors.items_frame())
    except EngineError as error:
        reason = str(error).replace(f"rule {rule.name!r}: ", "").replace("conditions: ", "")
        raise ValidationError(f"This condition cannot be checked: {reason}.") from None


def placement_rule_conflicts(placement: Placement, candidate: EngineRule) -> list[str]:
    """Contradictions between `candidate` and the placement's other active rules."""
    others = [rule for rule in placement_rules(placement) if rule.id != candidate.id]
    return rules_conflicts([*others, candidate], selectors.items_frame())


def placement_pipeline(placement: Placement) -> RulePipeline:
    """The placement's active rules compiled against the catalogue, reused until either
    changes (or the hour turns, so date windows open and close on time)."""
    rules_state = placement.rules.aggregate(n=Count("pk"), latest=Max("updated_at"))
    items_state = Item.objects.aggregate(n=Count("pk"), latest=Max("updated_at"))
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    key = (placement.pk, *rules_state.values(), *items_state.values(), hour)
    return _compiled(key)


@lru_cache(maxsize=32)
def _compiled(key: tuple) -> RulePipeline:
    """Every rule that can run; one the catalogue no longer fits (saved before validation, or
    an attribute whose values changed type) is left out and its problem shown in admin, so
    one broken rule never stops the placement from serving."""
    placement = Placement.objects.get(pk=key[0])
    items = selectors.items_frame()
    usable, problems = [], {}
    rules = placement.rules.filter(is_active=True).select_related("pin_item")
    for rule in rules.prefetch_related("conditions"):
        try:
            engine_rule = rule_to_engine(rule)
            RulePipeline.compile([engine_rule], items)
        except (EngineError, ValidationError) as error:
            problems[rule.pk] = _problem_text(error)
            continue
        usable.append(engine_rule)
    _rule_problems_record(placement, problems)
    return RulePipeline.compile(usable, items)


def _problem_text(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(error.messages)[:500]
    return str(error)[:500]


def _rule_problems_record(placement: Placement, problems: dict[int, str]) -> None:
    # update() leaves updated_at alone: recording a problem does not recompile the rules.
    for rule_pk, problem in problems.items():
        logger.warning("rule #%s skipped when serving: %s", rule_pk, problem)
        Rule.objects.filter(pk=rule_pk).exclude(problem=problem).update(problem=problem)
    placement.rules.exclude(pk__in=list(problems)).exclude(problem="").update(problem="")


def placement_candidates(
    placement: Placement,
    model: HybridRecommender,
    user_ids: list[str],
    *,
    history: pd.DataFrame | None = None,
    item_id: str | None = None,
) -> pd.DataFrame:
    """Ranked candidates for the users (or, with `history`, for one user from fresh events)."""
    k = max(placement.count * OVERFETCH, MIN_CANDIDATES)
    strategy = placement.strategy
    if strategy == Placement.Strategy.TRENDING:
        return _same_for_everyone(user_ids, _trending_pool(placement), "trending")
    if strategy == Placement.Strategy.SIMILAR_ITEMS:
        if item_id is None:
            return _empty_candidates()
        similar = model.similar_items([item_id], k=k) if _known(model, [item_id]) else None
        if similar is None or similar.empty:
            return _empty_candidates()
        scores = pd.Series(similar["score"].to_numpy(), index=similar["similar_item_id"])
        return _same_for_everyone(user_ids, scores, "similar")
    pool = _strategy_pool(placement, model)
    if pool is not None and len(pool) == 0:
        return _empty_candidates()
    k = min(k, len(pool)) if pool is not None else k
    if history is not None:
        recs = model.recommend_for_history(
            history, k=k, user_id=user_ids[0], candidates=pool, explain=True
        )
    else:
        recs = model.recommend(user_ids, k=k, candidates=pool, explain=True)
    return recs[["user_id", "item_id", "score", "source", "because_item_id"]]


def _strategy_pool(placement: Placement, model: HybridRecommender) -> np.ndarray | None:
    """The items a strategy ranks, restricted to those the model knows (None: all of them)."""
    if placement.strategy == Placement.Strategy.NEW_ARRIVALS:
        since = timezone.now() - dt.timedelta(days=placement.window_days)
        ids = Item.objects.filter(published_at__gte=since).values_list("external_id", flat=True)
        return _known_only(model, list(ids))
    if placement.strategy == Placement.Strategy.RANKING:
        return _known_only(model, [str(item_id) for item_id in placement.item_list])
    return None


def trending_items(*, days: int, limit: int = TRENDING_POOL) -> pd.Series:
    """Items by their number of events in the last `days` days, most first (cached for a
    few minutes: the count over recent events is the same for every user)."""
    try:
        return cache.get_or_set(
            f"trending:v1:{days}:{limit}", lambda: _trending_count(days, limit), TRENDING_SECONDS
        )
    except CACHE_ERRORS:  # Redis down: count every time
        return _trending_count(days, limit)


def _trending_pool(placement: Placement) -> pd.Series:
    """The trending items a placement draws from: as many per user as the other strategies
    overfetch, not the whole cached pool (which would repeat hundreds of rows per user)."""
    pool = trending_items(days=placement.window_days)
    return pool.head(max(placement.count * OVERFETCH, MIN_CANDIDATES))


def _trending_count(days: int, limit: int) -> pd.Series:
    since = timezone.now() - dt.timedelta(days=days)
    counts = (
        Interaction.objects.filter(timestamp__gte=since)
        .values("item__external_id")
        .annotate(events=Count("pk"))
        .order_by("-events")[:limit]
    )
    return pd.Series(
        {row["item__external_id"]: float(row["events"]) for row in counts}, dtype=float
    )


def _same_for_everyone(user_ids: list[str], scores: pd.Series, source: str) -> pd.DataFrame:
    if scores.empty or not user_ids:
        return _empty_candidates()
    n = len(scores)
    return pd.DataFrame(
        {
            "user_id": np.repeat(np.array(user_ids, dtype=object), n),
            "item_id": np.tile(scores.index.to_numpy(dtype=object), len(user_ids)),
            "score": np.tile(scores.to_numpy(dtype=float), len(user_ids)),
            "source": source,
            "because_item_id": None,
        }
    )


def _known(model: HybridRecommender, item_ids: list[str]) -> bool:
    return bool((model.item_map_.positions(item_ids) >= 0).all())


def _known_only(model: HybridRecommender, item_ids: list[str]) -> np.ndarray:
    ids = np.array(item_ids, dtype=object)
    return ids[model.item_map_.positions(ids) >= 0] if len(ids) else ids


def _empty_candidates() -> pd.DataFrame:
    return pd.DataFrame(columns=["user_id", "item_id", "score", "source", "because_item_id"])


def placement_lists(
    placement: Placement,
    model: HybridRecommender,
    users: pd.DataFrame,
    *,
    segments: dict[int, set[str]],
    history: pd.DataFrame | None = None,
    item_id: str | None = None,
    trace: list[pd.DataFrame] | None = None,
    pipeline: RulePipeline | None = None,
    consumed_since_fit: dict[str, set[str]] | None = None,
) -> dict[str, list[dict]]:
    """Every given user's list for the placement: candidates, then rules, then the fallbacks
    in order for users left with nothing. `users`: external_id, opt_out. With `history`, the
    one user's candidates come from those events instead of the fitted model; `item_id` is the
    page's item for similar-items placements; `trace` collects what each rule did;
    `pipeline` replaces the placement's own rules (the preview's "without rules");
    `consumed_since_fit` (user -> items) are left out of the model's candidates: the user
    engaged with them after the model was fitted, so it does not know they were seen."""
    pipeline = pipeline or placement_pipeline(placement)
    profiled = users.loc[~users["opt_out"], "external_id"].tolist()
    opted_out = users.loc[users["opt_out"], "external_id"].tolist()
    candidates = (
        placement_candidates(placement, model, profiled, history=history, item_id=item_id)
        if profiled
        else _empty_candidates()
    )
    candidates = _without_consumed(candidates, consumed_since_fit)
    if opted_out:
        # Opted out of profiling: what is popular, never what they did.
        trending = _trending_pool(placement)
        candidates = pd.concat(
            [candidates, _same_for_everyone(opted_out, trending, "trending")], ignore_index=True
        )
    consumed = _consumed(pipeline, users) if _uses(pipeline, "exclude_consumed") else None
    lists = _apply(pipeline, candidates, placement.count, consumed, segments, trace)
    for fallback in placement.fallbacks:
        empty = [user for user in users["external_id"] if not lists.get(user)]
        if not empty:
            break
        if fallback == "trending":
            trending = _trending_pool(placement)
            fallback_candidates = _same_for_everyone(empty, trending, "trending")
        elif fallback == "inhouse" and placement.strategy != Placement.Strategy.PERSONALIZED:
            allowed = [user for user in empty if user in set(profiled)]
            if not allowed:
                continue
            fallback_candidates = _without_consumed(
                model.recommend(allowed, k=MIN_CANDIDATES, explain=True), consumed_since_fit
            )
        else:
            continue  # "personalize": stored Personalize lists come with that integration
        lists.update(
            _apply(pipeline, fallback_candidates, placement.count, consumed, segments, trace)
        )
    return lists


def _without_consumed(
    candidates: pd.DataFrame, consumed: dict[str, set[str]] | None
) -> pd.DataFrame:
    if not consumed or candidates.empty:
        return candidates
    seen = [
        item_id in consumed.get(user_id, ())
        for user_id, item_id in zip(
            candidates["user_id"].tolist(), candidates["item_id"].tolist(), strict=True
        )
    ]
    return candidates[~np.array(seen, dtype=bool)]


def _apply(pipeline, candidates, k, consumed, segments, trace=None) -> dict[str, list[dict]]:
    if candidates.empty:
        return {}
    result = pipeline.apply(
        candidates, k, consumed=consumed, segments=segments, trace=trace is not None
    )
    if trace is not None:
        trace.append(result.trace)
    # One pass over plain columns: a groupby with a frame per user costs a millisecond a user.
    frame = result.lists
    lists: dict[str, list[dict]] = {}
    for user_id, item_id, score, source, because, rules in zip(
        frame["user_id"].tolist(),
        frame["item_id"].tolist(),
        frame["score"].tolist(),
        frame["source"].tolist(),
        frame["because_item_id"].tolist(),
        frame["rules"].tolist(),
        strict=True,
    ):
        lists.setdefault(str(user_id), []).append(
            {
                "item_id": str(item_id),
                "score": round(float(score), 6),
                "reason": source,
                "because_item_id": None if pd.isna(because) else str(because),
                "rules": list(rules),
            }
        )
    return lists


def _uses(pipeline: RulePipeline, kind: str) -> bool:
    return any(rule.kind == kind for rule in pipeline.rules)


def _consumed(pipeline: RulePipeline, users: pd.DataFrame) -> dict[str, set[str]]:
    pairs = Interaction.objects.filter(user__external_id__in=users["external_id"].tolist())
    consumed: dict[str, set[str]] = {}
    for user_id, item_id in pairs.values_list("user__external_id", "item__external_id"):
        consumed.setdefault(user_id, set()).add(item_id)
    return consumed


def placement_lists_from(
    placement: Placement, candidates: pd.DataFrame, *, segments: dict[int, set[str]]
) -> dict[str, list[dict]]:
    """Lists from candidates another source made (Amazon Personalize), through the
    placement's rules; no fallback here: a user without a list is served by the others."""
    pipeline = placement_pipeline(placement)
    consumed = None
    if _uses(pipeline, "exclude_consumed"):
        users = pd.DataFrame({"external_id": candidates["user_id"].unique()})
        consumed = _consumed(pipeline, users)
    return _apply(pipeline, candidates, placement.count, consumed, segments)
