"""Refreshing segment membership: rule segments from their conditions, learned segments by
k-means on behaviour features. Both read the same features, computed once per refresh."""

import json
import logging

import pandas as pd
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from recommendations import selectors
from recommendations.engine.errors import EngineError
from recommendations.engine.segments import behaviour_features, learn_segments, rule_segment_members
from recommendations.models import EndUser, Segment, SegmentMembership
from recommendations.services.rules import condition_to_engine

logger = logging.getLogger(__name__)

LEARNED_SLUG = "learned-{number}"
# What a segment's conditions can raise against the users' features and attributes.
SEGMENT_ERRORS = (EngineError, ValidationError, KeyError, TypeError, ValueError)


def segments_refresh(*, learn: bool = True, random_state: int = 0) -> dict[str, int]:
    """Recompute every segment's members; returns the size of each segment by slug."""
    users = dict(EndUser.objects.values_list("external_id", "pk"))
    features = behaviour_features(
        selectors.interactions_frame(),
        selectors.items_frame(),
        timezone.now(),
        user_ids=list(users),
    )
    attributes = selectors.user_attributes_frame()
    attributes = attributes.set_index("user_id") if attributes is not None else None
    sizes = {}
    for segment in Segment.objects.filter(kind=Segment.Kind.RULES).prefetch_related("conditions"):
        try:
            conditions = [condition_to_engine(c) for c in segment.conditions.all()]
            members = rule_segment_members(features, attributes, conditions)
        except SEGMENT_ERRORS as error:
            # One broken segment (saved before validation, or an attribute gone) keeps its
            # last members and says why; the others are refreshed.
            problem = "; ".join(error.messages) if isinstance(error, ValidationError) else error
            logger.warning("segment %r not refreshed: %s", segment.slug, problem)
            Segment.objects.filter(pk=segment.pk).update(
                profile={**segment.profile, "problem": f"not refreshed: {problem}"}
            )
            continue
        profile = {"conditions": [str(condition) for condition in conditions]}
        _members_replace(segment, [users[m] for m in members], profile)
        sizes[segment.slug] = len(members)
    if learn and len(features):
        sizes.update(_learned_refresh(features, users, random_state))
    return sizes


def _learned_refresh(features: pd.DataFrame, users: dict[str, int], random_state: int) -> dict:
    learned = learn_segments(features, random_state=random_state)
    sizes, kept = {}, []
    for number, profile in learned.profiles.iterrows():
        slug = LEARNED_SLUG.format(number=number)
        segment, _ = Segment.objects.update_or_create(
            slug=slug, defaults={"name": profile["name"], "kind": Segment.Kind.LEARNED}
        )
        members = learned.labels.index[learned.labels == number]
        summary = json.loads(profile.to_json())  # plain JSON types for the profile field
        summary["criterion"] = learned.criterion
        _members_replace(segment, [users[m] for m in members], summary)
        sizes[slug] = len(members)
        kept.append(segment.pk)
    # Fewer clusters than last time: the extra ones are emptied, not deleted, so rules that
    # name them stay (and apply to nobody) instead of vanishing or widening to everyone.
    for segment in Segment.objects.filter(kind=Segment.Kind.LEARNED).exclude(pk__in=kept):
        _members_replace(segment, [], {"retired": learned.criterion})
    logger.info("learned segments: %s", learned.criterion)
    return sizes


@transaction.atomic
def _members_replace(segment: Segment, user_pks: list[int], profile: dict) -> None:
    SegmentMembership.objects.filter(segment=segment).delete()
    SegmentMembership.objects.bulk_create(
        [SegmentMembership(segment=segment, user_id=pk) for pk in user_pks], batch_size=5000
    )
    segment.size = len(user_pks)
    segment.profile = profile
    segment.refreshed_at = timezone.now()
    segment.save(update_fields=["size", "profile", "refreshed_at"])
