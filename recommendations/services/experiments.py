"""Experiment arms: a user falls in an arm by a stable hash of the experiment's salt (a
bulletin's or a placement's slug) and their external id, in proportion to the arms' shares.
The same user lands in the same arm in every run, request and process."""

import hashlib
from collections.abc import Sequence
from typing import Protocol, TypeVar

from recommendations.models import Placement, PlacementVariant
from recsite.local_cache import LocalCache

HASH_BUCKETS = 10_000
# Arms are read on every widget request; a change in admin shows within this many seconds.
_arms = LocalCache(seconds=30, maxsize=1000)


class Arm(Protocol):
    share: int


ArmT = TypeVar("ArmT", bound=Arm)


def hash_bucket(salt: str, external_id: str) -> int:
    """A stable bucket in [0, HASH_BUCKETS) for a user: the same in every run and process."""
    digest = hashlib.sha256(f"{salt}:{external_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % HASH_BUCKETS


def arm_for(arms: Sequence[ArmT], salt: str, external_id: str) -> ArmT | None:
    """The arm a user falls in, by cumulative shares over a stable hash (None: no arms)."""
    if not arms:
        return None
    bucket = hash_bucket(salt, external_id)
    total = sum(arm.share for arm in arms)
    upper = 0
    for arm in arms:
        upper += arm.share
        if bucket < upper * HASH_BUCKETS // total:
            return arm
    return arms[-1]


def placement_arms(placement: Placement) -> list[PlacementVariant]:
    """The placement's arms, cached briefly in the process: every widget request asks."""
    return _arms.get(
        placement.pk,
        lambda: list(PlacementVariant.objects.filter(placement=placement).order_by("pk")),
    )


def placement_arm(placement: Placement, external_id: str) -> PlacementVariant | None:
    return arm_for(placement_arms(placement), placement.slug, external_id)
