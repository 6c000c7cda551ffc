"""The Amazon Personalize path, one step per call, so a Celery task can advance a run and
re-check Personalize's jobs with a countdown instead of sleeping:

export to S3 (CSV + schemas) -> dataset import jobs -> solution version (metrics into a model
version) -> batch inference job -> output parsed into recommendation sets (source personalize,
marketer rules applied) -> done.

A failure that waiting cannot fix (a FAILED job, missing credentials, bad configuration) ends
the run with its reason; the in-house lists keep serving. Throttling and timeouts are left to
the task's retries.

Real time (`personalize_realtime_list`, for the recommendations API when a campaign is set):
one user's list from the campaign, through the placement's rules, or the in-house list when
Personalize fails or is slower than its timeout.
"""

import csv
import hashlib
import io
import logging
import re
from collections.abc import Callable
from dataclasses import replace

import pandas as pd
from django.conf import settings
from django.utils import timezone

from integrations.personalize.batch import parse_batch_output, user_personalization_input
from integrations.personalize.client import JobStatus, PersonalizeAdapter
from integrations.personalize.errors import PersonalizeError
from integrations.personalize.schemas import (
    column_names,
    interactions_schema,
    items_schema,
    schema_json,
    users_schema,
)
from integrations.storage import StorageError, local_copy, put
from recommendations import selectors
from recommendations.models import (
    EndUser,
    ModelVersion,
    PersonalizeRun,
    Placement,
    RecommendationSet,
)
from recommendations.services.placements import placement_lists_from
from recommendations.services.recommending import lists_write
from recommendations.services.serving import ServedList, served_lists
from recsite.local_cache import LocalCache

logger = logging.getLogger(__name__)

USER_ATTRIBUTE_NAME = re.compile(r"[^A-Za-z0-9_]")
MAX_USER_ATTRIBUTES = 5
FATAL_KINDS = {"credentials", "invalid", "not_found", "failed"}
MAX_REALTIME_RESULTS = 500  # GetRecommendations' numResults: 1 to 500
# The real-time path keeps one adapter (and so one boto3 client, whose making costs about a
# tenth of a second) per web process for an hour; rotated credentials are picked up after it.
REALTIME_ADAPTER_SECONDS = 3600
_realtime_adapters = LocalCache(seconds=REALTIME_ADAPTER_SECONDS, maxsize=1)


class PersonalizeNotConfigured(Exception):
    """PERSONALIZE_ENABLED is off, or a required setting is missing."""


def personalize_adapter() -> PersonalizeAdapter:
    """The adapter for the configured account (tests replace it with a stubbed one)."""
    return PersonalizeAdapter()


def personalize_run_start() -> PersonalizeRun:
    missing = [
        name
        for name in ("PERSONALIZE_ROLE_ARN", "PERSONALIZE_BUCKET")
        if not getattr(settings, name)
    ]
    if not settings.PERSONALIZE_ENABLED or missing:
        reason = "PERSONALIZE_ENABLED is off" if not settings.PERSONALIZE_ENABLED else ""
        reason = reason or f"{', '.join(missing)} not set"
        raise PersonalizeNotConfigured(f"Amazon Personalize is not configured: {reason}")
    run = PersonalizeRun.objects.create(recipe=settings.PERSONALIZE_RECIPE, folder="")
    prefix = settings.PERSONALIZE_PREFIX.strip("/")
    run.folder = f"s3://{settings.PERSONALIZE_BUCKET}/{prefix}/run-{run.pk}"
    run.save(update_fields=["folder"])
    return run


def personalize_run_advance(*, run_id: int) -> int | None:
    """Do the run's next step. Returns seconds to wait before calling again, or None when the
    run has ended (done or failed). Raises PersonalizeError only when a retry may help."""
    run = PersonalizeRun.objects.get(pk=run_id)
    if run.status != PersonalizeRun.Status.RUNNING:
        return None
    step: Callable[[PersonalizeRun, PersonalizeAdapter], int | None] = STEPS[run.step]
    try:
        return step(run, personalize_adapter())
    except PersonalizeError as error:
        if error.retryable:
            run.message = f"retrying: {error}"
            run.save(update_fields=["message", "updated_at"])
            raise
        _fail(run, str(error))
    except StorageError as error:
        _fail(run, str(error))
    return None


def _export(run: PersonalizeRun, adapter: PersonalizeAdapter) -> int:
    """Write the three CSVs, make sure the dataset group, schemas and datasets exist, and
    start one import job per dataset."""
    attributes = _user_attributes()
    files = {
        "interactions": (interactions_schema(), _interactions_csv()),
        "items": (items_schema(), _items_csv()),
        "users": (users_schema(attributes), _users_csv(attributes)),
    }
    group = adapter.dataset_group_ensure(settings.PERSONALIZE_DATASET_GROUP)
    run.arns = {"dataset_group": group, "datasets": {}, "import_jobs": {}}
    for dataset_type, (schema, (rows, body)) in files.items():
        uri = f"{run.folder}/{dataset_type}.csv"
        put(uri, body)
        text = schema_json(schema)
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]  # schemas cannot change
        schema_name = f"{settings.PERSONALIZE_DATASET_GROUP}-{dataset_type}-{digest}"
        schema_arn = adapter.schema_ensure(schema_name, text)
        dataset = adapter.dataset_ensure(group, dataset_type, schema_arn)
        run.arns["datasets"][dataset_type] = dataset
        run.arns["import_jobs"][dataset_type] = adapter.import_job_start(
            dataset, uri, settings.PERSONALIZE_ROLE_ARN, f"recsite-run-{run.pk}-{dataset_type}"
        )
        run.counts[dataset_type] = rows
    return _step_next(run, PersonalizeRun.Step.IMPORTING, "exported; dataset import jobs started")


def _importing(run: PersonalizeRun, adapter: PersonalizeAdapter) -> int | None:
    statuses = [adapter.describe_import_job(arn) for arn in run.arns["import_jobs"].values()]
    failed = [status for status in statuses if status.is_failed]
    if failed:
        return _fail(run, f"import job failed: {failed[0].failure_reason or failed[0].status}")
    if not all(status.is_done for status in statuses):
        return settings.PERSONALIZE_POLL_SECONDS
    if "solution_version" not in run.arns:  # a version has no name to find it by: start once
        solution = adapter.solution_ensure(
            run.arns["dataset_group"], run.recipe, f"recsite-{run.recipe}"
        )
        run.arns["solution"] = solution
        run.arns["solution_version"] = adapter.solution_version_start(solution)
        run.save(update_fields=["arns"])
    return _step_next(run, PersonalizeRun.Step.TRAINING, "imported; training a solution version")


def _training(run: PersonalizeRun, adapter: PersonalizeAdapter) -> int | None:
    done, wait = _settled(run, adapter.describe_solution_version(run.arns["solution_version"]))
    if not done:
        return wait
    if run.model_version is None:  # a retried step must not record the version twice
        run.model_version = ModelVersion.objects.create(
            source=ModelVersion.Source.PERSONALIZE,
            status=ModelVersion.Status.READY,
            params={"recipe": run.recipe, "solution_version": run.arns["solution_version"]},
            metrics=adapter.solution_version_metrics(run.arns["solution_version"]),
            data_size=dict(run.counts),
            artifact=run.arns["solution_version"],
            decision="trained by Amazon Personalize; its metrics are Personalize's own",
        )
        run.save(update_fields=["model_version"])
    users = list(EndUser.objects.order_by("pk").values_list("external_id", flat=True))
    put(f"{run.folder}/batch/input.json", user_personalization_input(users))
    run.arns["batch_job"] = adapter.batch_inference_job_start(
        solution_version_arn=run.arns["solution_version"],
        input_s3_uri=f"{run.folder}/batch/input.json",
        output_s3_uri=f"{run.folder}/batch/output/",
        role_arn=settings.PERSONALIZE_ROLE_ARN,
        name=f"recsite-run-{run.pk}",
        num_results=settings.PERSONALIZE_NUM_RESULTS,
        filter_arn=settings.PERSONALIZE_FILTER_ARN or None,
    )
    return _step_next(run, PersonalizeRun.Step.INFERRING, "trained; batch inference started")


def _inferring(run: PersonalizeRun, adapter: PersonalizeAdapter) -> int | None:
    done, wait = _settled(run, adapter.describe_batch_inference_job(run.arns["batch_job"]))
    if not done:
        return wait
    # Personalize names its output after the input file.
    with local_copy(f"{run.folder}/batch/output/input.json.out") as path:
        output = parse_batch_output(path.read_bytes())
    run.line_errors = [
        {"line": error.line, "message": error.message} for error in output.errors[:1000]
    ]
    run.counts["recommendation_lines"] = int(output.recommendations["user_id"].nunique())
    run.counts["line_errors"] = len(output.errors)
    run.counts["lists_written"] = personalize_lists_store(
        recommendations=output.recommendations, model_version=run.model_version
    )
    run.step = PersonalizeRun.Step.DONE
    run.status = PersonalizeRun.Status.DONE
    run.finished_at = timezone.now()
    run.message = (
        f"{run.counts['lists_written']} lists stored; {len(output.errors)} output lines "
        "could not be used"
        if output.errors
        else f"{run.counts['lists_written']} lists stored"
    )
    run.save()
    return None


def _step_next(run: PersonalizeRun, step: str, message: str) -> int:
    """Move the run to its next step; the job just started is checked after the poll wait."""
    run.step = step
    run.message = message
    run.save()
    return settings.PERSONALIZE_POLL_SECONDS


def _settled(run: PersonalizeRun, status: JobStatus) -> tuple[bool, int | None]:
    """Whether the step's job is done, and if not, what the step returns: the wait before the
    next check, or None once the run has failed with the job's reason."""
    if status.is_failed:
        _fail(run, f"{run.get_step_display()} failed: {status.failure_reason or status.status}")
        return False, None
    if not status.is_done:
        return False, settings.PERSONALIZE_POLL_SECONDS
    return True, None


STEPS = {
    PersonalizeRun.Step.EXPORT: _export,
    PersonalizeRun.Step.IMPORTING: _importing,
    PersonalizeRun.Step.TRAINING: _training,
    PersonalizeRun.Step.INFERRING: _inferring,
}


def personalize_lists_store(*, recommendations: pd.DataFrame, model_version: ModelVersion) -> int:
    """Personalize's lists through each placement's rules, stored with source personalize."""
    candidates = recommendations.assign(source="personalize", because_item_id=None)
    users = selectors.user_keys_frame(
        EndUser.objects.filter(external_id__in=candidates["user_id"].unique())
    )
    if users.empty:
        return 0
    users = users[~users["opt_out"]]  # opted out of profiling: never an outside model's list
    segments = selectors.segment_members(users)
    lists = {
        placement: placement_lists_from(placement, candidates, segments=segments)
        for placement in selectors.personalized_placements()
    }
    return lists_write(users=users, lists=lists, model_version=model_version)


def personalize_run_fail(*, run_id: int, reason: str) -> None:
    """End a run that cannot go on (its retries are used up), unless it has ended already."""
    run = PersonalizeRun.objects.get(pk=run_id)
    if run.status == PersonalizeRun.Status.RUNNING:
        _fail(run, reason)


def _fail(run: PersonalizeRun, reason: str) -> None:
    run.status = PersonalizeRun.Status.FAILED
    run.message = reason
    run.finished_at = timezone.now()
    run.save()
    logger.warning("%s failed: %s", run, reason)


def _csv(header: list[str], rows) -> tuple[int, bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
    return count, buffer.getvalue().encode()


def _interactions_csv() -> tuple[int, bytes]:
    frame = selectors.interactions_frame()
    rows = zip(
        frame["user_id"],
        frame["item_id"],
        frame["timestamp"].astype("int64"),
        frame["event_type"],
        frame["event_value"].astype(object).where(frame["event_value"].notna(), ""),
        strict=True,
    )
    return _csv(column_names(interactions_schema()), rows)


def _items_csv() -> tuple[int, bytes]:
    items = selectors.items_frame()
    published = pd.to_datetime(items["published_at"], utc=True)
    created = ((published - pd.Timestamp(0, tz="UTC")).dt.total_seconds().fillna(0)).astype("int64")
    rows = zip(
        items["item_id"],
        items["categories"].map(lambda values: "|".join(values or [])),
        items["tags"].map(lambda values: "|".join(values or [])),
        created,
        items["price"].astype(object).where(items["price"].notna(), ""),
        items["title"],
        items["description"],
        strict=True,
    )
    return _csv(column_names(items_schema()), rows)


def _user_attributes() -> list[str]:
    """The users' text attributes Personalize can use, as column names (at most a few)."""
    users = selectors.user_attributes_frame()
    if users is None:
        return []
    names = [
        column
        for column in users.columns
        if column != "user_id" and users[column].map(lambda v: isinstance(v, str)).any()
    ]
    return [USER_ATTRIBUTE_NAME.sub("_", name).upper() for name in names[:MAX_USER_ATTRIBUTES]]


def _users_csv(attributes: list[str]) -> tuple[int, bytes]:
    users = selectors.user_attributes_frame()
    all_ids = EndUser.objects.order_by("pk").values_list("external_id", flat=True)
    by_id = users.set_index("user_id") if users is not None else pd.DataFrame()
    sources = {USER_ATTRIBUTE_NAME.sub("_", c).upper(): c for c in by_id.columns}
    rows = (
        [user_id, *(_cell(by_id, user_id, sources.get(name)) for name in attributes)]
        for user_id in all_ids
    )
    return _csv(column_names(users_schema(attributes)), rows)


def _cell(frame: pd.DataFrame, user_id: str, column: str | None) -> str:
    if column is None or user_id not in frame.index:
        return ""
    value = frame.at[user_id, column]
    return "" if pd.isna(value) else str(value)


def personalize_realtime_enabled(placement: Placement) -> bool:
    """Whether the API asks the campaign in real time for the placement's Personalize lists:
    Personalize switched on, a campaign configured, and a personalized placement (the
    campaign ranks items for a user, not around a page's item). Otherwise a placement that
    asks for Personalize serves the stored batch lists."""
    return bool(
        settings.PERSONALIZE_ENABLED
        and settings.PERSONALIZE_CAMPAIGN_ARN
        and placement.strategy == Placement.Strategy.PERSONALIZED
    )


def personalize_realtime_list(
    *, placement: Placement, user_pk: int, timeout_seconds: float | None = None
) -> ServedList:
    """One user's list from the Personalize campaign (one `GetRecommendations` attempt,
    bounded by the timeout), through the placement's rules, each item tagged source
    personalize. On an error, a timeout or an empty answer, and for a user who opted out of
    profiling (never sent to Personalize), the in-house list serves instead: the stored one,
    then the placement's fallbacks, as `served_lists` finds them (marked as a fallback)."""
    users = selectors.user_keys_frame(EndUser.objects.filter(pk=user_pk))
    if personalize_realtime_enabled(placement) and not users.empty:
        items = _campaign_list(placement, users, timeout_seconds)
        if items:
            return ServedList([{**entry, "source": "personalize"} for entry in items])
    served = served_lists(
        placement=placement, user_pks=[user_pk], source=RecommendationSet.Source.IN_HOUSE
    ).get(user_pk, ServedList())
    return replace(served, fallback=True)


def _campaign_list(
    placement: Placement, users: pd.DataFrame, timeout_seconds: float | None
) -> list[dict]:
    """The campaign's items for the one user in `users`, through the placement's rules;
    empty for a user who opted out, or when Personalize fails or finds nothing usable."""
    if bool(users["opt_out"].iloc[0]):
        return []  # opted out of profiling: never an outside model's list
    user_id = str(users["external_id"].iloc[0])
    # Room for the rules to drop some, within what GetRecommendations allows.
    wanted = max(placement.count * 3, settings.PERSONALIZE_NUM_RESULTS)
    try:
        found = _realtime_adapters.get("adapter", personalize_adapter).recommendations_for_user(
            settings.PERSONALIZE_CAMPAIGN_ARN,
            user_id,
            min(max(wanted, 1), MAX_REALTIME_RESULTS),
            timeout_seconds or settings.PERSONALIZE_REALTIME_TIMEOUT_SECONDS,
            filter_arn=settings.PERSONALIZE_FILTER_ARN or None,
        )
    except PersonalizeError as error:
        logger.info("Personalize real time fell back to in-house for %s: %s", placement, error)
        return []
    if not found:
        return []
    candidates = pd.DataFrame(
        {
            "user_id": user_id,
            "item_id": [item.item_id for item in found],
            "score": [
                item.score if item.score is not None else 1.0 / (n + 1)
                for n, item in enumerate(found)
            ],
            "source": "personalize",
            "because_item_id": None,
        }
    )
    lists = placement_lists_from(placement, candidates, segments=selectors.segment_members(users))
    return lists.get(user_id, [])
