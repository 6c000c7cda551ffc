"""Amazon Personalize failing: every Personalize call through botocore's Stubber (checked
against the real service model), S3 on moto's server over HTTP, the run advanced by its Celery
task (in-process, where a retry's countdown is not waited for).

- Throttling that never ends: retried a bounded number of times, then the run fails with the
  reason, instead of staying "running" with nobody left to advance it.
- ServiceUnavailable for a while: retried like throttling, and the run goes on.
- A resource deleted meanwhile (ResourceNotFound): the run fails at once, naming it.
- A batch inference job that fails: the run fails with Personalize's reason, no Personalize
  list is stored, and the placement that asks for Personalize keeps serving the in-house lists.
- `manage.py personalize` (no workers) bounds its retries the same way.
"""

import io
import logging

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from recommendations.models import PersonalizeRun, Placement, RecommendationSet
from recommendations.services.api_keys import api_key_create
from recommendations.services.personalize import personalize_run_advance, personalize_run_start
from recommendations.services.recommending import recommendations_compute_all_in_process
from recommendations.services.training import model_version_train
from recommendations.tasks import personalize_run_task
from recsite.celery import app as celery_app
from tests.recommendations.test_personalize_flow import (
    ARN,
    BATCH_JOB,
    _stub_export,
    _stub_imports,
    _stub_training,
)

pytestmark = pytest.mark.django_db

ATTEMPTS = personalize_run_task.max_retries + 1


def _calls(stubber, operation: str) -> list[dict]:
    """Every call of `operation` the adapter makes from now on."""
    calls: list[dict] = []
    stubber.client.meta.events.register(
        f"before-parameter-build.personalize.{operation}",
        lambda params, **kwargs: calls.append(params),
    )
    return calls


def _exported(stubber) -> PersonalizeRun:
    _stub_export(stubber)
    run = personalize_run_start()
    personalize_run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.step == PersonalizeRun.Step.IMPORTING
    return run


@pytest.fixture(autouse=True)
def _eager_without_propagation():
    """Run in-process, a task's retries follow at once (no countdown) as long as its errors
    are not propagated to the caller; the last error ends the task, as on a worker."""
    previous = celery_app.conf.task_eager_propagates
    celery_app.conf.task_eager_propagates = False
    yield
    celery_app.conf.task_eager_propagates = previous


def _task(run: PersonalizeRun) -> PersonalizeRun:
    """One pass of the run's task, retries included, as a worker would run it."""
    personalize_run_task.apply(args=(run.pk,))
    run.refresh_from_db()
    return run


def test_throttling_that_never_ends_is_retried_a_bounded_number_of_times_then_fails_the_run(
    personalize, caplog
):
    run = _exported(personalize)
    for _ in range(ATTEMPTS):
        personalize.add_client_error(
            "describe_dataset_import_job", "ThrottlingException", "Rate exceeded", 400
        )
    calls = _calls(personalize, "DescribeDatasetImportJob")

    run = _task(run)

    assert len(calls) == ATTEMPTS  # bounded: the task's max_retries, then no more
    assert run.status == PersonalizeRun.Status.FAILED, run.message
    assert "throttled" in run.message and "Rate exceeded" in run.message
    assert run.finished_at is not None
    assert any("failed" in r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)


def test_service_unavailable_for_a_while_is_retried_and_the_run_goes_on(personalize):
    run = _exported(personalize)
    for _ in range(2):
        personalize.add_client_error(
            "describe_dataset_import_job", "ServiceUnavailable", "Service unavailable", 503
        )
    _stub_imports(personalize)
    personalize.add_response("list_solutions", {"solutions": []})
    personalize.add_response("create_solution", {"solutionArn": f"{ARN}:solution/s"})
    personalize.add_response("create_solution_version", {"solutionVersionArn": f"{ARN}:sv/1"})
    calls = _calls(personalize, "DescribeDatasetImportJob")

    run = _task(run)

    assert run.status == PersonalizeRun.Status.RUNNING, run.message
    assert run.step == PersonalizeRun.Step.TRAINING
    assert len(calls) == 2 + 3  # two refused, then the three imports' statuses


def test_a_resource_deleted_meanwhile_fails_the_run_at_once_naming_it(personalize):
    run = _exported(personalize)
    personalize.add_client_error(
        "describe_dataset_import_job",
        "ResourceNotFoundException",
        "Could not find resource dataset import job",
        404,
    )
    calls = _calls(personalize, "DescribeDatasetImportJob")

    run = _task(run)

    assert len(calls) == 1  # not worth a retry
    assert run.status == PersonalizeRun.Status.FAILED
    assert "describe_dataset_import_job" in run.message
    assert f"{ARN}:import/" in run.message
    assert "ResourceNotFoundException" in run.message


def test_a_failed_batch_job_stores_nothing_and_in_house_lists_keep_serving(personalize):
    model_version_train()
    recommendations_compute_all_in_process()
    placement = Placement.objects.get(slug="for-you")
    placement.source, placement.fallback_order = Placement.Source.PERSONALIZE, "inhouse,trending"
    placement.save()
    run = _exported(personalize)
    _stub_imports(personalize)
    _stub_training(personalize)
    personalize.add_response(
        "describe_batch_inference_job",
        {
            "batchInferenceJob": {
                "batchInferenceJobArn": BATCH_JOB,
                "status": "CREATE FAILED",
                "failureReason": "Input file has no valid lines",
            }
        },
    )

    while run.status == PersonalizeRun.Status.RUNNING:
        run = _task(run)

    assert run.status == PersonalizeRun.Status.FAILED
    assert run.message == "batch inference failed: Input file has no valid lines"
    assert not RecommendationSet.objects.filter(source="personalize").exists()
    _, key = api_key_create(name="site", kind="secret")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    answer = client.get("/api/v1/recommendations/?user=user-00004&placement=for-you")
    assert answer.status_code == 200
    items = answer.json()["items"]
    stored = RecommendationSet.objects.get(
        user__external_id="user-00004", placement=placement, source="inhouse"
    )
    assert [item["id"] for item in items] == [entry["item_id"] for entry in stored.items][:10]
    assert {item["source"] for item in items} == {"inhouse"}


def test_the_command_also_gives_up_on_throttling_that_never_ends(personalize, settings):
    """Without workers `manage.py personalize` follows the run itself; its retries are bounded
    the same way, and it exits non-zero with the reason."""
    settings.PERSONALIZE_POLL_SECONDS = 0
    _stub_export(personalize)
    for _ in range(ATTEMPTS):
        personalize.add_client_error(
            "describe_dataset_import_job", "ThrottlingException", "Rate exceeded", 400
        )

    with pytest.raises(CommandError, match="throttled"):
        call_command("personalize", stdout=io.StringIO(), stderr=io.StringIO())

    run = PersonalizeRun.objects.get()
    assert run.status == PersonalizeRun.Status.FAILED
    assert "Rate exceeded" in run.message
