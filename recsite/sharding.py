"""Splitting a run over users into shards, and fanning the shards out over Celery workers.

A shard is a contiguous range of user primary keys, so a worker reads it with one range query
and a redelivered shard covers exactly the same users. Runs store their shards' bounds, so a
run resumed after its workers died re-sends the same shards.
"""

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from celery import Task, chord, group
from django.db.models import QuerySet


@dataclass(frozen=True)
class Shard:
    pk_from: int
    pk_to: int

    def as_bounds(self) -> list[int]:
        return [self.pk_from, self.pk_to]


def pk_shards(users: QuerySet, *, shard_users: int) -> tuple[int, list[Shard]]:
    """The number of `users` and their contiguous primary-key ranges of `shard_users` each."""
    if shard_users < 1:
        raise ValueError(f"shard_users must be at least 1, not {shard_users}")
    pks = np.fromiter(users.order_by("pk").values_list("pk", flat=True), dtype=np.int64)
    shards = [
        Shard(int(pks[start]), int(pks[min(start + shard_users, len(pks)) - 1]))
        for start in range(0, len(pks), shard_users)
    ]
    return len(pks), shards


def shards_from_bounds(bounds: Iterable[Iterable[int]]) -> list[Shard]:
    """The shards a run stored as `[[pk_from, pk_to], ...]`."""
    return [Shard(int(first), int(last)) for first, last in bounds]


def shards_fan_out(
    *, run_id: int, shards: list[Shard], shard_task: Task, finish_task: Task, fail_task: Task
) -> None:
    """One `shard_task(run_id, pk_from, pk_to)` per shard, then `finish_task(run_id)` once all
    succeeded. A shard that fails for good (its retries used up, or an error nothing retries)
    calls the chord's errback instead, so the run never waits for ever: Celery calls
    `fail_task(request, exc, traceback, run_id)` in the worker that saw the failure. With no
    shard at all the run finishes at once."""
    finish = finish_task.si(run_id)
    if not shards:
        finish.delay()
        return
    header = group(shard_task.si(run_id, shard.pk_from, shard.pk_to) for shard in shards)
    chord(header)(finish.on_error(fail_task.s(run_id)))
