"""Batch sizes for the database: rows per bulk write, ids per `__in` query."""

from collections.abc import Iterator

from django.db import connection

WRITE_BATCH = 5_000


def batches(values: list, size: int) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def query_batch_size() -> int:
    """How many ids one `__in` query may carry on this database."""
    return min(connection.features.max_query_params or 10_000, 10_000)
