"""Celery tasks: thin wrappers that call services."""

from celery import shared_task

from recommendations.services.importing import data_import


@shared_task(time_limit=2 * 3600, soft_time_limit=2 * 3600 - 60)
def data_import_task(
    users: str | None = None,
    items: str | None = None,
    interactions: str | None = None,
    skip_invalid: bool = False,
) -> dict:
    """Import CSV files (paths the worker can read, or s3:// URIs). Idempotent, so a redelivery
    after a worker crash imports nothing twice."""
    report = data_import(
        users=users, items=items, interactions=interactions, skip_invalid=skip_invalid
    )
    return report.as_dict()
