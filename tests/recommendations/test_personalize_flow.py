"""The Personalize path end to end: S3 on moto's server over HTTP, every Personalize call through
botocore's Stubber (checked against the real service model), the batch output written to S3
as Personalize writes it, parsed into recommendation sets with the rules applied."""

import json

import boto3
import pytest
from botocore.stub import Stubber

from integrations.personalize import PersonalizeAdapter
from integrations.personalize.errors import PersonalizeError
from recommendations.models import (
    EndUser,
    Item,
    ModelVersion,
    PersonalizeRun,
    Placement,
    RecommendationSet,
    Rule,
    RuleCondition,
)
from recommendations.services import personalize as personalize_service
from recommendations.services.personalize import (
    PersonalizeNotConfigured,
    personalize_run_advance,
    personalize_run_start,
)
from recommendations.services.recommending import recommendations_compute_all_in_process
from recommendations.services.training import model_version_train
from tests.conftest import S3_BUCKET

pytestmark = pytest.mark.django_db

ARN = "arn:aws:personalize:us-east-1:123456789012"
GROUP = f"{ARN}:dataset-group/recsite"
SOLUTION = f"{ARN}:solution/recsite-user-personalization"
VERSION = f"{SOLUTION}/v1"
BATCH_JOB = f"{ARN}:batch-inference-job/run"
ROLE = "arn:aws:iam::123456789012:role/personalize"


@pytest.fixture
def personalize(s3, settings, monkeypatch, planted_catalogue):
    settings.PERSONALIZE_ENABLED = True
    settings.PERSONALIZE_ROLE_ARN = ROLE
    settings.PERSONALIZE_BUCKET = S3_BUCKET
    settings.PERSONALIZE_PREFIX = "exports"
    client = boto3.session.Session().client(
        "personalize",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    adapter = PersonalizeAdapter(client, region="us-east-1", endpoint_url="")
    monkeypatch.setattr(personalize_service, "personalize_adapter", lambda: adapter)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def _stub_export(stub: Stubber) -> None:
    stub.add_response("list_dataset_groups", {"datasetGroups": []})
    stub.add_response("create_dataset_group", {"datasetGroupArn": GROUP})
    for kind in ("interactions", "items", "users"):
        stub.add_response("list_schemas", {"schemas": []})
        stub.add_response("create_schema", {"schemaArn": f"{ARN}:schema/{kind}"})
        stub.add_response("list_datasets", {"datasets": []})
        stub.add_response("create_dataset", {"datasetArn": f"{ARN}:dataset/recsite/{kind}"})
        stub.add_response(
            "create_dataset_import_job", {"datasetImportJobArn": f"{ARN}:import/{kind}"}
        )


def _stub_imports(stub: Stubber, status: str = "ACTIVE", reason: str = "") -> None:
    for kind in ("interactions", "items", "users"):
        job = {"datasetImportJobArn": f"{ARN}:import/{kind}", "status": status}
        if reason:
            job["failureReason"] = reason
        stub.add_response("describe_dataset_import_job", {"datasetImportJob": job})


def _stub_training(stub: Stubber) -> None:
    stub.add_response("list_solutions", {"solutions": []})
    stub.add_response("create_solution", {"solutionArn": SOLUTION})
    stub.add_response("create_solution_version", {"solutionVersionArn": VERSION})
    stub.add_response(
        "describe_solution_version",
        {"solutionVersion": {"solutionVersionArn": VERSION, "status": "ACTIVE"}},
    )
    stub.add_response(
        "get_solution_metrics",
        {"solutionVersionArn": VERSION, "metrics": {"precision_at_25": 0.11, "coverage": 0.5}},
    )
    stub.add_response("create_batch_inference_job", {"batchInferenceJobArn": BATCH_JOB})


def _stub_batch_done(stub: Stubber) -> None:
    stub.add_response(
        "describe_batch_inference_job",
        {"batchInferenceJob": {"batchInferenceJobArn": BATCH_JOB, "status": "ACTIVE"}},
    )


def _write_output(s3, run: PersonalizeRun, lines: list[str]) -> None:
    """What Personalize writes: one JSON line per input line, in `<input>.out`."""
    key = f"exports/run-{run.pk}/batch/output/input.json.out"
    s3.put_object(Bucket=S3_BUCKET, Key=key, Body="\n".join(lines).encode())


def _output_line(user_id: str, items: list[str]) -> str:
    scores = [round(1.0 / (n + 1), 4) for n in range(len(items))]
    return json.dumps(
        {
            "input": {"userId": user_id},
            "output": {"recommendedItems": items, "scores": scores},
            "error": None,
        }
    )


def _advance_until(run: PersonalizeRun, step: str) -> None:
    while run.step != step and run.status == PersonalizeRun.Status.RUNNING:
        personalize_run_advance(run_id=run.pk)
        run.refresh_from_db()


def test_full_flow_from_export_to_recommendation_sets(personalize, s3):
    model_version_train()  # in-house serving meanwhile
    recommendations_compute_all_in_process()
    stub = personalize
    excluded = Item.objects.get(external_id="item-00002")
    rule = Rule.objects.create(
        placement=Placement.objects.get(slug="for-you"), name="Not item 2", kind="exclude"
    )
    RuleCondition.objects.create(rule=rule, field="item_id", operator="equals", value="item-00002")
    _stub_export(stub)
    _stub_imports(stub)
    _stub_training(stub)
    _stub_batch_done(stub)

    run = personalize_run_start()
    assert personalize_run_advance(run_id=run.pk) > 0  # exported: check the imports later
    exported = s3.get_object(Bucket=S3_BUCKET, Key=f"exports/run-{run.pk}/interactions.csv")
    header = exported["Body"].read().decode().splitlines()[0]
    assert header == "USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE,EVENT_VALUE"
    _advance_until(run, PersonalizeRun.Step.INFERRING)
    batch_input = s3.get_object(Bucket=S3_BUCKET, Key=f"exports/run-{run.pk}/batch/input.json")
    assert json.loads(batch_input["Body"].read().splitlines()[0]) == {"userId": "user-00001"}

    _write_output(
        s3,
        run,
        [
            _output_line("user-00001", ["item-00002", "item-00005", "item-00009"]),
            "{not json",
            json.dumps(
                {"input": {"userId": "user-00002"}, "output": None, "error": "User not found"}
            ),
            _output_line("user-00003", ["item-00010", "item-00011"]),
        ],
    )
    assert personalize_run_advance(run_id=run.pk) is None
    run.refresh_from_db()

    assert run.status == PersonalizeRun.Status.DONE, run.message
    assert [error["line"] for error in run.line_errors] == [2, 3]
    version = run.model_version
    assert version.source == ModelVersion.Source.PERSONALIZE
    assert version.metrics == {"precision_at_25": 0.11, "coverage": 0.5}
    stored = RecommendationSet.objects.get(
        user__external_id="user-00001", placement__slug="for-you", source="personalize"
    )
    assert [entry["item_id"] for entry in stored.items] == ["item-00005", "item-00009"]
    assert excluded.external_id not in str(stored.items)
    assert RecommendationSet.objects.filter(source="inhouse").exists()  # both sources kept


def test_failed_import_job_ends_the_run_with_its_reason(personalize):
    _stub_export(personalize)
    _stub_imports(personalize, status="CREATE FAILED", reason="Not enough interactions")
    run = personalize_run_start()
    personalize_run_advance(run_id=run.pk)
    assert personalize_run_advance(run_id=run.pk) is None
    run.refresh_from_db()
    assert run.status == PersonalizeRun.Status.FAILED
    assert "Not enough interactions" in run.message


def test_throttling_is_raised_for_a_retry_and_leaves_the_run_where_it_was(personalize):
    _stub_export(personalize)
    personalize.add_client_error("describe_dataset_import_job", "ThrottlingException")
    run = personalize_run_start()
    personalize_run_advance(run_id=run.pk)
    with pytest.raises(PersonalizeError) as raised:
        personalize_run_advance(run_id=run.pk)
    assert raised.value.retryable
    run.refresh_from_db()
    assert run.status == PersonalizeRun.Status.RUNNING
    assert run.step == PersonalizeRun.Step.IMPORTING and "retrying" in run.message


def test_bad_credentials_end_the_run_and_in_house_keeps_serving(personalize):
    model_version_train()
    personalize.add_client_error(
        "list_dataset_groups", "ExpiredTokenException", "The security token has expired"
    )
    run = personalize_run_start()
    assert personalize_run_advance(run_id=run.pk) is None
    run.refresh_from_db()
    assert run.status == PersonalizeRun.Status.FAILED
    assert "ExpiredTokenException" in run.message
    assert ModelVersion.objects.get(is_active=True).source == "inhouse"


def test_not_configured_is_refused_with_what_is_missing(settings):
    settings.PERSONALIZE_ENABLED = True
    settings.PERSONALIZE_ROLE_ARN = ""
    settings.PERSONALIZE_BUCKET = "b"
    with pytest.raises(PersonalizeNotConfigured, match="PERSONALIZE_ROLE_ARN not set"):
        personalize_run_start()
    assert not PersonalizeRun.objects.exists()


def test_opted_out_users_get_no_personalize_list(personalize, s3):
    EndUser.objects.filter(external_id="user-00001").update(personalization_opt_out=True)
    import pandas as pd

    from recommendations.services.personalize import personalize_lists_store

    lists = pd.DataFrame(
        {
            "user_id": ["user-00001", "user-00003"],
            "item_id": ["item-00005", "item-00006"],
            "score": [1.0, 1.0],
            "rank": [1, 1],
        }
    )
    version = ModelVersion.objects.create(source="personalize", status="ready")
    personalize_lists_store(recommendations=lists, model_version=version)
    users = set(
        RecommendationSet.objects.filter(source="personalize").values_list(
            "user__external_id", flat=True
        )
    )
    assert users == {"user-00003"}


@pytest.fixture
def campaign(settings, monkeypatch, planted_catalogue):
    settings.PERSONALIZE_ENABLED = True
    settings.PERSONALIZE_CAMPAIGN_ARN = f"{ARN}:campaign/recsite"
    runtime = boto3.session.Session().client(
        "personalize-runtime",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    adapter = PersonalizeAdapter(runtime=runtime, region="us-east-1", endpoint_url="")
    monkeypatch.setattr(personalize_service, "personalize_adapter", lambda: adapter)
    model_version_train()
    recommendations_compute_all_in_process()
    with Stubber(runtime) as stubber:
        yield stubber


def test_realtime_list_comes_from_the_campaign_through_the_rules(campaign):
    from recommendations.services.personalize import personalize_realtime_list

    campaign.add_response(
        "get_recommendations",
        {"itemList": [{"itemId": f"item-{n:05d}", "score": 1 / n} for n in range(1, 40)]},
    )
    user = EndUser.objects.get(external_id="user-00001")
    served = personalize_realtime_list(
        placement=Placement.objects.get(slug="for-you"), user_pk=user.pk
    )
    assert not served.fallback and {entry["source"] for entry in served.items} == {"personalize"}
    assert [entry["item_id"] for entry in served.items][:2] == ["item-00001", "item-00002"]


def test_realtime_falls_back_to_in_house_when_personalize_fails(campaign):
    from recommendations.services.personalize import personalize_realtime_list

    campaign.add_client_error("get_recommendations", "ThrottlingException")
    user = EndUser.objects.get(external_id="user-00001")
    placement = Placement.objects.get(slug="for-you")
    served = personalize_realtime_list(placement=placement, user_pk=user.pk)
    stored = RecommendationSet.objects.get(user=user, placement=placement, source="inhouse")
    assert served.fallback and {entry["source"] for entry in served.items} == {"inhouse"}
    assert [{**entry, "source": "inhouse"} for entry in stored.items] == served.items


def test_a_retried_import_check_does_not_start_a_second_solution_version(personalize):
    _stub_export(personalize)
    _stub_imports(personalize)
    personalize.add_response("list_solutions", {"solutions": []})
    personalize.add_response("create_solution", {"solutionArn": SOLUTION})
    personalize.add_response("create_solution_version", {"solutionVersionArn": VERSION})
    run = personalize_run_start()
    personalize_run_advance(run_id=run.pk)
    PersonalizeRun.objects.filter(pk=run.pk).update(step=PersonalizeRun.Step.IMPORTING)
    personalize_run_advance(run_id=run.pk)
    # As if the worker died after starting the version but before the step was recorded.
    PersonalizeRun.objects.filter(pk=run.pk).update(step=PersonalizeRun.Step.IMPORTING)
    _stub_imports(personalize)
    personalize_run_advance(run_id=run.pk)
    run.refresh_from_db()
    assert run.step == PersonalizeRun.Step.TRAINING
    assert run.arns["solution_version"] == VERSION
