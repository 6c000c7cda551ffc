"""What a placement shows one user, computed now as the website or newsletter would get it,
with each item's explanation and what each rule changed."""

from dataclasses import dataclass, field

import pandas as pd

from recommendations import selectors
from recommendations.engine.rules import RulePipeline
from recommendations.models import EndUser, Item, Placement, Segment
from recommendations.services.placements import placement_lists, placement_pipeline
from recommendations.services.training import active_model


class PreviewError(Exception):
    """The preview cannot be computed; the message says what to fix."""


@dataclass
class Preview:
    placement: Placement
    user: EndUser
    items: list[dict]
    without_rules: list[dict]
    changes: list[dict] = field(default_factory=list)  # rule, item, effect
    rules: list[str] = field(default_factory=list)
    inactive_rules: list[str] = field(default_factory=list)


def placement_preview(
    *, placement: Placement, user_external_id: str, item_id: str | None = None
) -> Preview:
    found = active_model()
    if found is None:
        raise PreviewError("No active model yet: train one (manage.py train) to preview.")
    user = EndUser.objects.filter(external_id=user_external_id.strip()).first()
    if user is None:
        raise PreviewError(f"No end user with the id {user_external_id!r}.")
    if placement.strategy == Placement.Strategy.SIMILAR_ITEMS and not item_id:
        raise PreviewError("A similar-items placement needs an item id to preview.")
    version, model = found
    users = selectors.user_keys_frame(EndUser.objects.filter(pk=user.pk))
    history = selectors.user_history_frame(user.pk)
    segments = selectors.segment_members(users)
    trace: list[pd.DataFrame] = []
    common = {"segments": segments, "history": history, "item_id": item_id}
    shown = placement_lists(placement, model, users, trace=trace, **common)
    no_rules = RulePipeline.compile([], selectors.items_frame())
    plain = placement_lists(placement, model, users, pipeline=no_rules, **common)
    pipeline = placement_pipeline(placement)
    member_of = {pk for pk, members in segments.items() if user.external_id in members}

    def applies(rule) -> bool:
        return rule.segment is None or rule.segment in member_of

    segment_names = dict(
        Segment.objects.filter(pk__in={rule.segment for rule in pipeline.rules}).values_list(
            "pk", "name"
        )
    )
    return Preview(
        placement=placement,
        user=user,
        items=selectors.entries_explained(shown.get(user.external_id, []), source=version.source),
        without_rules=selectors.entries_explained(
            plain.get(user.external_id, []), source=version.source
        ),
        changes=_changes(trace),
        rules=[f"{rule.name} ({rule.kind})" for rule in pipeline.rules if applies(rule)],
        inactive_rules=[
            *(f"{rule.name} (outside its dates)" for rule in pipeline.inactive),
            *(
                f"{rule.name} (only for segment {segment_names.get(rule.segment, rule.segment)}, "
                f"which {user.external_id} is not in)"
                for rule in pipeline.rules
                if not applies(rule)
            ),
        ],
    )


def _changes(trace: list[pd.DataFrame]) -> list[dict]:
    if not trace:
        return []
    frame = pd.concat(trace, ignore_index=True)
    titles = dict(
        Item.objects.filter(external_id__in=frame["item_id"].astype(str).tolist()).values_list(
            "external_id", "title"
        )
    )
    return [
        {
            "rule": row.rule or "built in",
            "item": titles.get(str(row.item_id), str(row.item_id)),
            "effect": row.effect,
        }
        for row in frame.itertuples(index=False)
    ]
