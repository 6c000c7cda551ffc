"""The Personalize adapter against botocore's Stubber, which checks every request against the
real service model; the runtime timeout against a loopback socket that never answers."""

import json
import math
import socket
import threading
import time

import boto3
import pytest
from botocore.stub import Stubber

from integrations.personalize import PersonalizeAdapter, PersonalizeError, recipe_arn
from integrations.personalize.batch import (
    parse_batch_output,
    personalized_ranking_input,
    similar_items_input,
    user_personalization_input,
)
from integrations.personalize.schemas import (
    column_names,
    interactions_schema,
    items_schema,
    schema_json,
    users_schema,
)

ARN = "arn:aws:personalize:us-east-1:123456789012"
GROUP = f"{ARN}:dataset-group/news"
SCHEMA = f"{ARN}:schema/news-interactions"
DATASET = f"{ARN}:dataset/news/INTERACTIONS"
IMPORT_JOB = f"{ARN}:dataset-import-job/import-1"
SOLUTION = f"{ARN}:solution/news-up"
VERSION = f"{SOLUTION}/abc123"
BATCH_JOB = f"{ARN}:batch-inference-job/batch-1"
CAMPAIGN = f"{ARN}:campaign/news"
ROLE = "arn:aws:iam::123456789012:role/personalize"


@pytest.fixture
def control():
    client = boto3.session.Session().client(
        "personalize",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with Stubber(client) as stubber:
        yield PersonalizeAdapter(client, region="us-east-1", endpoint_url=""), stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def runtime():
    client = boto3.session.Session().client(
        "personalize-runtime",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with Stubber(client) as stubber:
        yield PersonalizeAdapter(runtime=client, region="us-east-1", endpoint_url=""), stubber
        stubber.assert_no_pending_responses()


# -- schemas ---------------------------------------------------------------------------------


def test_interactions_schema_matches_the_export_columns():
    schema = interactions_schema()
    assert column_names(schema) == ["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE", "EVENT_VALUE"]
    types = {field["name"]: field["type"] for field in schema["fields"]}
    assert types["TIMESTAMP"] == "long"
    assert types["EVENT_VALUE"] == ["null", "float"]


def test_items_schema_marks_categorical_and_textual_fields():
    fields = {field["name"]: field for field in items_schema()["fields"]}
    assert fields["CATEGORIES"]["categorical"] and fields["TAGS"]["categorical"]
    assert fields["DESCRIPTION"]["textual"]
    assert fields["PRICE"]["type"] == ["null", "float"]
    assert fields["CREATION_TIMESTAMP"]["type"] == "long"


def test_users_schema_takes_its_attributes_at_call_time():
    schema = users_schema(["COUNTRY", "PLAN"])
    assert column_names(schema) == ["USER_ID", "COUNTRY", "PLAN"]
    assert all(field.get("categorical") for field in schema["fields"][1:])
    assert json.loads(schema_json(schema)) == schema
    with pytest.raises(ValueError, match="not usable"):
        users_schema(["bad name"])


# -- ensure ----------------------------------------------------------------------------------


def test_dataset_group_found_on_a_later_page(control):
    adapter, stub = control
    stub.add_response("list_dataset_groups", {"datasetGroups": [], "nextToken": "t"}, {})
    stub.add_response(
        "list_dataset_groups",
        {"datasetGroups": [{"name": "news", "datasetGroupArn": GROUP}]},
        {"nextToken": "t"},
    )
    assert adapter.dataset_group_ensure("news") == GROUP


def test_dataset_group_created_when_missing(control):
    adapter, stub = control
    stub.add_response("list_dataset_groups", {"datasetGroups": []}, {})
    stub.add_response("create_dataset_group", {"datasetGroupArn": GROUP}, {"name": "news"})
    assert adapter.dataset_group_ensure("news") == GROUP


def test_dataset_group_created_by_a_racing_worker_is_found(control):
    adapter, stub = control
    stub.add_response("list_dataset_groups", {"datasetGroups": []}, {})
    stub.add_client_error("create_dataset_group", "ResourceAlreadyExistsException")
    stub.add_response(
        "list_dataset_groups", {"datasetGroups": [{"name": "news", "datasetGroupArn": GROUP}]}, {}
    )
    assert adapter.dataset_group_ensure("news") == GROUP


def test_schema_created_when_missing(control):
    adapter, stub = control
    body = schema_json(interactions_schema())
    stub.add_response("list_schemas", {"schemas": [{"name": "other", "schemaArn": SCHEMA}]}, {})
    stub.add_response(
        "create_schema", {"schemaArn": SCHEMA}, {"name": "news-interactions", "schema": body}
    )
    assert adapter.schema_ensure("news-interactions", body) == SCHEMA


def test_existing_schema_is_reused_when_identical(control):
    adapter, stub = control
    body = schema_json(interactions_schema())
    stub.add_response(
        "list_schemas", {"schemas": [{"name": "news-interactions", "schemaArn": SCHEMA}]}, {}
    )
    stub.add_response(
        "describe_schema",
        {"schema": {"schemaArn": SCHEMA, "schema": json.dumps(interactions_schema(), indent=2)}},
        {"schemaArn": SCHEMA},
    )
    assert adapter.schema_ensure("news-interactions", body) == SCHEMA


def test_existing_schema_with_other_fields_is_refused(control):
    adapter, stub = control
    stub.add_response(
        "list_schemas", {"schemas": [{"name": "news-items", "schemaArn": SCHEMA}]}, {}
    )
    stub.add_response(
        "describe_schema",
        {"schema": {"schema": schema_json(interactions_schema())}},
        {"schemaArn": SCHEMA},
    )
    with pytest.raises(PersonalizeError, match="news-items: exists with different") as caught:
        adapter.schema_ensure("news-items", schema_json(items_schema()))
    assert caught.value.kind == "invalid"


def test_dataset_found_by_type(control):
    adapter, stub = control
    stub.add_response(
        "list_datasets",
        {"datasets": [{"name": "x", "datasetArn": DATASET, "datasetType": "INTERACTIONS"}]},
        {"datasetGroupArn": GROUP},
    )
    assert adapter.dataset_ensure(GROUP, "interactions", SCHEMA) == DATASET


def test_dataset_created_with_a_name_from_its_group(control):
    adapter, stub = control
    stub.add_response("list_datasets", {"datasets": []}, {"datasetGroupArn": GROUP})
    stub.add_response(
        "create_dataset",
        {"datasetArn": DATASET},
        {
            "name": "news-interactions",
            "schemaArn": SCHEMA,
            "datasetGroupArn": GROUP,
            "datasetType": "Interactions",
        },
    )
    assert adapter.dataset_ensure(GROUP, "INTERACTIONS", SCHEMA) == DATASET


def test_solution_created_with_the_recipe_arn(control):
    adapter, stub = control
    stub.add_response("list_solutions", {"solutions": []}, {"datasetGroupArn": GROUP})
    stub.add_response(
        "create_solution",
        {"solutionArn": SOLUTION},
        {
            "name": "news-up",
            "recipeArn": "arn:aws:personalize:::recipe/aws-user-personalization-v2",
            "datasetGroupArn": GROUP,
        },
    )
    assert adapter.solution_ensure(GROUP, "user-personalization", "news-up") == SOLUTION


def test_existing_solution_is_reused(control):
    adapter, stub = control
    stub.add_response(
        "list_solutions",
        {"solutions": [{"name": "news-up", "solutionArn": SOLUTION}]},
        {"datasetGroupArn": GROUP},
    )
    assert adapter.solution_ensure(GROUP, "popularity", "news-up") == SOLUTION


def test_recipes_by_friendly_name():
    assert recipe_arn("similar-items") == "arn:aws:personalize:::recipe/aws-similar-items"
    assert recipe_arn("personalized-ranking").endswith("/aws-personalized-ranking-v2")
    assert recipe_arn("popularity").endswith("/aws-popularity-count")
    assert (
        recipe_arn("arn:aws:personalize:::recipe/aws-sims")
        == "arn:aws:personalize:::recipe/aws-sims"
    )
    with pytest.raises(PersonalizeError, match="unknown recipe"):
        recipe_arn("magic")


# -- jobs ------------------------------------------------------------------------------------


def test_import_job_start_then_describe(control):
    adapter, stub = control
    stub.add_response(
        "create_dataset_import_job",
        {"datasetImportJobArn": IMPORT_JOB},
        {
            "jobName": "import-1",
            "datasetArn": DATASET,
            "dataSource": {"dataLocation": "s3://bucket/exports/interactions.csv"},
            "roleArn": ROLE,
            "importMode": "FULL",
        },
    )
    stub.add_response(
        "describe_dataset_import_job",
        {"datasetImportJob": {"datasetImportJobArn": IMPORT_JOB, "status": "CREATE IN_PROGRESS"}},
        {"datasetImportJobArn": IMPORT_JOB},
    )
    arn = adapter.import_job_start(
        DATASET, "s3://bucket/exports/interactions.csv", ROLE, "import-1"
    )
    status = adapter.describe_import_job(arn)
    assert (status.arn, status.status) == (IMPORT_JOB, "CREATE IN_PROGRESS")
    assert not status.is_done and not status.is_failed


def test_import_job_started_twice_returns_the_first(control):
    adapter, stub = control
    stub.add_client_error("create_dataset_import_job", "ResourceAlreadyExistsException")
    stub.add_response(
        "list_dataset_import_jobs",
        {"datasetImportJobs": [{"jobName": "import-1", "datasetImportJobArn": IMPORT_JOB}]},
        {"datasetArn": DATASET},
    )
    assert adapter.import_job_start(DATASET, "s3://b/k.csv", ROLE, "import-1") == IMPORT_JOB


def test_solution_version_start_describe_and_metrics(control):
    adapter, stub = control
    stub.add_response(
        "create_solution_version",
        {"solutionVersionArn": VERSION},
        {"solutionArn": SOLUTION, "trainingMode": "FULL"},
    )
    stub.add_response(
        "describe_solution_version",
        {"solutionVersion": {"solutionVersionArn": VERSION, "status": "ACTIVE"}},
        {"solutionVersionArn": VERSION},
    )
    stub.add_response(
        "get_solution_metrics",
        {"solutionVersionArn": VERSION, "metrics": {"precision_at_25": 0.12, "coverage": 0.4}},
        {"solutionVersionArn": VERSION},
    )
    assert adapter.solution_version_start(SOLUTION) == VERSION
    assert adapter.describe_solution_version(VERSION).is_done
    assert adapter.solution_version_metrics(VERSION) == {"precision_at_25": 0.12, "coverage": 0.4}


def test_batch_job_start_with_filter(control):
    adapter, stub = control
    filter_arn = f"{ARN}:filter/unseen"
    stub.add_response(
        "create_batch_inference_job",
        {"batchInferenceJobArn": BATCH_JOB},
        {
            "jobName": "batch-1",
            "solutionVersionArn": VERSION,
            "numResults": 50,
            "filterArn": filter_arn,
            "jobInput": {"s3DataSource": {"path": "s3://bucket/batch/in.json"}},
            "jobOutput": {"s3DataDestination": {"path": "s3://bucket/batch/out/"}},
            "roleArn": ROLE,
        },
    )
    arn = adapter.batch_inference_job_start(
        solution_version_arn=VERSION,
        input_s3_uri="s3://bucket/batch/in.json",
        output_s3_uri="s3://bucket/batch/out",
        role_arn=ROLE,
        name="batch-1",
        num_results=50,
        filter_arn=filter_arn,
    )
    assert arn == BATCH_JOB


def test_failed_batch_job_carries_its_reason(control):
    adapter, stub = control
    stub.add_response(
        "describe_batch_inference_job",
        {
            "batchInferenceJob": {
                "batchInferenceJobArn": BATCH_JOB,
                "status": "CREATE FAILED",
                "failureReason": "Input file is not valid JSON lines",
            }
        },
        {"batchInferenceJobArn": BATCH_JOB},
    )
    status = adapter.describe_batch_inference_job(BATCH_JOB)
    assert status.is_failed and not status.is_done
    assert status.failure_reason == "Input file is not valid JSON lines"


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code", ["ThrottlingException", "TooManyRequestsException", "LimitExceededException"]
)
def test_throttling_is_retryable(control, code):
    adapter, stub = control
    stub.add_client_error("create_solution_version", code, "slow down")
    with pytest.raises(PersonalizeError) as caught:
        adapter.solution_version_start(SOLUTION)
    assert caught.value.kind == "throttled" and caught.value.retryable
    assert "create_solution_version" in str(caught.value) and SOLUTION in str(caught.value)


@pytest.mark.parametrize(
    "code", ["ExpiredTokenException", "UnrecognizedClientException", "AccessDeniedException"]
)
def test_bad_credentials_are_not_retryable(control, code):
    adapter, stub = control
    stub.add_client_error("describe_solution", code)
    with pytest.raises(PersonalizeError) as caught:
        adapter.describe_solution(SOLUTION)
    assert caught.value.kind == "credentials" and not caught.value.retryable


def test_missing_resource_is_not_found(control):
    adapter, stub = control
    stub.add_client_error("describe_dataset", "ResourceNotFoundException", "no such dataset")
    with pytest.raises(PersonalizeError, match="describe_dataset .*no such dataset") as caught:
        adapter.describe_dataset(DATASET)
    assert caught.value.kind == "not_found"


def test_no_credentials_at_all(monkeypatch, tmp_path):
    for name in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    adapter = PersonalizeAdapter(region="us-east-1", endpoint_url="http://127.0.0.1:9")
    with pytest.raises(PersonalizeError) as caught:
        adapter.dataset_group_ensure("news")
    assert caught.value.kind == "credentials"


# -- runtime ---------------------------------------------------------------------------------


def test_recommendations_for_user(runtime):
    adapter, stub = runtime
    stub.add_response(
        "get_recommendations",
        {"itemList": [{"itemId": "i1", "score": 0.6}, {"itemId": "i2", "score": 0.3}]},
        {"campaignArn": CAMPAIGN, "userId": "u1", "numResults": 2},
    )
    items = adapter.recommendations_for_user(CAMPAIGN, "u1", 2, timeout_seconds=0.5)
    assert [(item.item_id, item.score) for item in items] == [("i1", 0.6), ("i2", 0.3)]


def test_runtime_error_is_a_personalize_error(runtime):
    adapter, stub = runtime
    stub.add_client_error("get_recommendations", "ResourceNotFoundException")
    with pytest.raises(PersonalizeError) as caught:
        adapter.recommendations_for_user(CAMPAIGN, "u1")
    assert caught.value.kind == "not_found"


@pytest.fixture
def silent_server():
    """A loopback port that accepts connections and never answers."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(timeout=1)
    for connection in accepted:
        connection.close()
    listener.close()


def test_runtime_timeout_is_unavailable_and_bounded(silent_server, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    adapter = PersonalizeAdapter(region="us-east-1", endpoint_url=silent_server)
    started = time.monotonic()
    with pytest.raises(PersonalizeError, match="get_recommendations user u1") as caught:
        adapter.recommendations_for_user(CAMPAIGN, "u1", 10, timeout_seconds=0.3)
    assert time.monotonic() - started < 1.5, "one attempt, bounded by the timeout"
    assert caught.value.kind == "unavailable" and caught.value.retryable


# -- batch files -----------------------------------------------------------------------------


def test_batch_input_lines_per_recipe():
    assert user_personalization_input(["u1", 2]) == b'{"userId":"u1"}\n{"userId":"2"}\n'
    assert similar_items_input(["i1"]) == b'{"itemId":"i1"}\n'
    ranking = personalized_ranking_input({"u1": ["i1", "i2"]})
    assert json.loads(ranking) == {"userId": "u1", "itemList": ["i1", "i2"]}


def _output_line(given: dict, items: list[str], scores: list[float] | None) -> str:
    output = {"recommendedItems": items}
    if scores is not None:
        output["scores"] = scores
    return json.dumps({"input": given, "output": output, "error": None})


def test_batch_output_round_trip_keeps_bad_lines_as_errors():
    given = user_personalization_input(["u1", "u2"]).decode().splitlines()
    text = "\n".join(
        [
            _output_line(json.loads(given[0]), ["i1", "i2"], [0.7, 0.2]),
            '{"input": {"userId": "u9"}, "output": {"recommendedItems": [',
            json.dumps({"input": {"userId": "u3"}, "error": "User not in training data"}),
            "",
            _output_line(json.loads(given[1]), ["i3"], [0.9]),
        ]
    )
    parsed = parse_batch_output(text.encode())
    frame = parsed.recommendations
    assert list(frame.columns) == ["user_id", "item_id", "score", "rank"]
    assert frame.values.tolist() == [
        ["u1", "i1", 0.7, 1],
        ["u1", "i2", 0.2, 2],
        ["u2", "i3", 0.9, 1],
    ]
    assert [(error.line, error.input) for error in parsed.errors] == [
        (2, None),
        (3, {"userId": "u3"}),
    ]
    assert "malformed JSON" in parsed.errors[0].message
    assert parsed.errors[1].message == "User not in training data"


def test_similar_items_output_has_no_scores():
    text = _output_line({"itemId": "i1"}, ["i2", "i3"], None)
    frame = parse_batch_output(text).recommendations
    assert list(frame.columns) == ["item_id", "similar_item_id", "score", "rank"]
    assert frame["similar_item_id"].tolist() == ["i2", "i3"]
    assert all(math.isnan(score) for score in frame["score"])
    assert frame["rank"].tolist() == [1, 2]


def test_mismatched_scores_and_empty_files():
    text = _output_line({"userId": "u1"}, ["i1", "i2"], [0.5])
    parsed = parse_batch_output([text])
    assert parsed.recommendations.empty
    assert parsed.errors[0].message == "scores do not match recommendedItems"
    assert parse_batch_output("").recommendations.columns.tolist() == [
        "user_id",
        "item_id",
        "score",
        "rank",
    ]
