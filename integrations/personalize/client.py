"""`PersonalizeAdapter`: the only code that talks to Amazon Personalize.

Every call is one request: "ensure" calls find a resource by name or create it, "start" calls
create a job, "describe" calls return a `JobStatus`. Nothing here sleeps or polls; callers
(Celery tasks) re-check with a countdown and retry `PersonalizeError.retryable` failures.
"""

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

from .errors import PersonalizeError, personalize_error

RECIPES = {
    "user-personalization": "arn:aws:personalize:::recipe/aws-user-personalization-v2",
    "similar-items": "arn:aws:personalize:::recipe/aws-similar-items",
    "personalized-ranking": "arn:aws:personalize:::recipe/aws-personalized-ranking-v2",
    "popularity": "arn:aws:personalize:::recipe/aws-popularity-count",
}
DATASET_TYPES = {"interactions": "Interactions", "items": "Items", "users": "Users"}
DONE_STATUSES = {"ACTIVE"}
FAILED_STATUSES = {"CREATE FAILED", "CREATE STOPPED", "DELETE PENDING", "DELETE IN_PROGRESS"}


@dataclass(frozen=True)
class JobStatus:
    """Where a resource or job stands: PENDING, CREATE IN_PROGRESS, ACTIVE, CREATE FAILED..."""

    arn: str
    status: str
    failure_reason: str = ""

    @property
    def is_done(self) -> bool:
        return self.status in DONE_STATUSES

    @property
    def is_failed(self) -> bool:
        return self.status in FAILED_STATUSES or "FAILED" in self.status


class RecommendedItem(NamedTuple):
    item_id: str
    score: float | None


def recipe_arn(recipe: str) -> str:
    """A recipe ARN from a friendly name (see RECIPES) or an ARN given as it is."""
    if recipe.startswith("arn:"):
        return recipe
    try:
        return RECIPES[recipe]
    except KeyError:
        known = ", ".join(sorted(RECIPES))
        raise PersonalizeError("invalid", f"unknown recipe {recipe!r} (known: {known})") from None


def dataset_type_name(dataset_type: str) -> str:
    """Personalize's spelling of a dataset type: Interactions, Items or Users."""
    try:
        return DATASET_TYPES[dataset_type.lower()]
    except KeyError:
        raise PersonalizeError("invalid", f"unknown dataset type {dataset_type!r}") from None


def arn_name(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


class PersonalizeAdapter:
    """Wraps boto3's `personalize` and `personalize-runtime` clients; both are injectable."""

    def __init__(
        self,
        client: Any = None,
        runtime: Any = None,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        self.region = region or settings.AWS_REGION
        self.endpoint_url = endpoint_url if endpoint_url is not None else settings.AWS_ENDPOINT_URL
        self._client = client
        self._runtime = runtime
        self._runtimes: dict[float, Any] = {}

    # -- clients ---------------------------------------------------------------------------

    def _new_client(self, service: str, config: Config | None = None) -> Any:
        # A new session each time: boto3's default session keeps the first credentials it finds.
        return boto3.session.Session().client(
            service, region_name=self.region, endpoint_url=self.endpoint_url, config=config
        )

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._new_client("personalize")
        return self._client

    def runtime_client(self, timeout_seconds: float) -> Any:
        """The injected runtime client, or one made with these timeouts and a single attempt."""
        if self._runtime is not None:
            return self._runtime
        if timeout_seconds not in self._runtimes:
            config = Config(
                connect_timeout=timeout_seconds,
                read_timeout=timeout_seconds,
                retries={"total_max_attempts": 1, "mode": "standard"},
            )
            self._runtimes[timeout_seconds] = self._new_client("personalize-runtime", config)
        return self._runtimes[timeout_seconds]

    def _call(self, operation: str, resource: str, **params: Any) -> dict[str, Any]:
        try:
            return getattr(self.client, operation)(**params)
        except (BotoCoreError, ClientError) as error:
            raise personalize_error(operation, resource, error) from error

    def _pages(self, operation: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
        try:
            for page in self.client.get_paginator(operation).paginate(**params):
                yield from page.get(key, [])
        except (BotoCoreError, ClientError) as error:
            raise personalize_error(operation, str(params or ""), error) from error

    def _find(
        self, operation: str, key: str, match: Callable[[dict], bool], **params: Any
    ) -> dict[str, Any] | None:
        """The first listed entry that matches, reading pages only until it is found."""
        entries = self._pages(operation, key, **params)
        return next((entry for entry in entries if match(entry)), None)

    def _ensure(
        self,
        find: Callable[[], str | None],
        create: Callable[[], str],
        what: str,
        *,
        look_first: bool = True,
    ) -> str:
        """The ARN found, or created; a creation racing another worker (or repeating an earlier
        one, for jobs: `look_first=False`) finds the existing resource's ARN."""
        arn = find() if look_first else None
        if arn:
            return arn
        try:
            return create()
        except PersonalizeError as error:
            if error.kind != "exists":
                raise
        arn = find()
        if not arn:
            raise PersonalizeError("failed", f"Personalize {what}: exists but cannot be listed")
        return arn

    # -- dataset groups, schemas, datasets -------------------------------------------------

    def dataset_group_ensure(self, name: str) -> str:
        """The ARN of the dataset group called `name`, created when missing."""

        def find() -> str | None:
            found = self._find("list_dataset_groups", "datasetGroups", lambda g: g["name"] == name)
            return found and found["datasetGroupArn"]

        def create() -> str:
            return self._call("create_dataset_group", name, name=name)["datasetGroupArn"]

        return self._ensure(find, create, f"dataset group {name}")

    def schema_ensure(self, name: str, schema_json: str) -> str:
        """The ARN of the schema `name`; an existing one must hold the same schema (schemas
        cannot change: give a changed schema a new name)."""

        def find() -> str | None:
            found = self._find("list_schemas", "schemas", lambda s: s["name"] == name)
            if not found:
                return None
            arn = found["schemaArn"]
            current = self._call("describe_schema", arn, schemaArn=arn)["schema"]["schema"]
            if json.loads(current) != json.loads(schema_json):
                raise PersonalizeError(
                    "invalid", f"Personalize schema {name}: exists with different fields"
                )
            return arn

        def create() -> str:
            return self._call("create_schema", name, name=name, schema=schema_json)["schemaArn"]

        return self._ensure(find, create, f"schema {name}")

    def dataset_ensure(
        self, group_arn: str, dataset_type: str, schema_arn: str, *, name: str | None = None
    ) -> str:
        """The ARN of the group's dataset of this type (one per type), created when missing."""
        type_name = dataset_type_name(dataset_type)
        name = name or f"{arn_name(group_arn)}-{type_name.lower()}"[:63]

        def find() -> str | None:
            found = self._find(
                "list_datasets",
                "datasets",
                lambda d: d["datasetType"].lower() == type_name.lower(),
                datasetGroupArn=group_arn,
            )
            return found and found["datasetArn"]

        def create() -> str:
            response = self._call(
                "create_dataset",
                f"{type_name} in {group_arn}",
                name=name,
                schemaArn=schema_arn,
                datasetGroupArn=group_arn,
                datasetType=type_name,
            )
            return response["datasetArn"]

        return self._ensure(find, create, f"dataset {name}")

    # -- jobs ------------------------------------------------------------------------------

    def import_job_start(
        self, dataset_arn: str, s3_uri: str, role_arn: str, name: str, *, mode: str = "FULL"
    ) -> str:
        """Start importing a CSV (or folder) from S3; a job of that name already started is
        returned instead, so a redelivered task does not fail."""

        def find() -> str | None:
            found = self._find(
                "list_dataset_import_jobs",
                "datasetImportJobs",
                lambda j: j["jobName"] == name,
                datasetArn=dataset_arn,
            )
            return found and found["datasetImportJobArn"]

        def create() -> str:
            response = self._call(
                "create_dataset_import_job",
                f"{name} ({s3_uri})",
                jobName=name,
                datasetArn=dataset_arn,
                dataSource={"dataLocation": s3_uri},
                roleArn=role_arn,
                importMode=mode,
            )
            return response["datasetImportJobArn"]

        return self._ensure(find, create, f"import job {name}", look_first=False)

    def solution_ensure(self, group_arn: str, recipe: str, name: str) -> str:
        """The ARN of the solution `name` in the group, created with the recipe when missing."""
        arn_of_recipe = recipe_arn(recipe)

        def find() -> str | None:
            found = self._find(
                "list_solutions",
                "solutions",
                lambda s: s["name"] == name,
                datasetGroupArn=group_arn,
            )
            return found and found["solutionArn"]

        def create() -> str:
            response = self._call(
                "create_solution",
                name,
                name=name,
                recipeArn=arn_of_recipe,
                datasetGroupArn=group_arn,
            )
            return response["solutionArn"]

        return self._ensure(find, create, f"solution {name}")

    def solution_version_start(self, solution_arn: str, *, training_mode: str = "FULL") -> str:
        """Start training a new solution version; returns its ARN."""
        response = self._call(
            "create_solution_version",
            solution_arn,
            solutionArn=solution_arn,
            trainingMode=training_mode,
        )
        return response["solutionVersionArn"]

    def solution_version_metrics(self, version_arn: str) -> dict[str, float]:
        """The offline metrics of a trained version (precision_at_25, ndcg_at_10...)."""
        response = self._call("get_solution_metrics", version_arn, solutionVersionArn=version_arn)
        return {name: float(value) for name, value in response.get("metrics", {}).items()}

    def batch_inference_job_start(
        self,
        *,
        solution_version_arn: str,
        input_s3_uri: str,
        output_s3_uri: str,
        role_arn: str,
        name: str,
        num_results: int = 25,
        filter_arn: str | None = None,
    ) -> str:
        """Start a batch inference job reading JSON lines from `input_s3_uri` and writing
        `<input name>.out` under the `output_s3_uri` folder; returns its ARN."""
        params: dict[str, Any] = {
            "jobName": name,
            "solutionVersionArn": solution_version_arn,
            "numResults": num_results,
            "jobInput": {"s3DataSource": {"path": input_s3_uri}},
            "jobOutput": {"s3DataDestination": {"path": output_s3_uri.rstrip("/") + "/"}},
            "roleArn": role_arn,
        }
        if filter_arn:
            params["filterArn"] = filter_arn

        def find() -> str | None:
            found = self._find(
                "list_batch_inference_jobs",
                "batchInferenceJobs",
                lambda j: j["jobName"] == name,
                solutionVersionArn=solution_version_arn,
            )
            return found and found["batchInferenceJobArn"]

        def create() -> str:
            response = self._call("create_batch_inference_job", name, **params)
            return response["batchInferenceJobArn"]

        return self._ensure(find, create, f"batch inference job {name}", look_first=False)

    # -- status ----------------------------------------------------------------------------

    def _describe(self, operation: str, arn_param: str, key: str, arn: str) -> JobStatus:
        found = self._call(operation, arn, **{arn_param: arn})[key]
        return JobStatus(
            arn=arn, status=found.get("status", ""), failure_reason=found.get("failureReason", "")
        )

    def describe_dataset_group(self, arn: str) -> JobStatus:
        return self._describe("describe_dataset_group", "datasetGroupArn", "datasetGroup", arn)

    def describe_dataset(self, arn: str) -> JobStatus:
        return self._describe("describe_dataset", "datasetArn", "dataset", arn)

    def describe_import_job(self, arn: str) -> JobStatus:
        return self._describe(
            "describe_dataset_import_job", "datasetImportJobArn", "datasetImportJob", arn
        )

    def describe_solution(self, arn: str) -> JobStatus:
        return self._describe("describe_solution", "solutionArn", "solution", arn)

    def describe_solution_version(self, arn: str) -> JobStatus:
        return self._describe(
            "describe_solution_version", "solutionVersionArn", "solutionVersion", arn
        )

    def describe_batch_inference_job(self, arn: str) -> JobStatus:
        return self._describe(
            "describe_batch_inference_job", "batchInferenceJobArn", "batchInferenceJob", arn
        )

    # -- real time -------------------------------------------------------------------------

    def recommendations_for_user(
        self,
        campaign_arn: str,
        user_id: str,
        num_results: int = 25,
        timeout_seconds: float = 1.0,
        *,
        filter_arn: str | None = None,
    ) -> list[RecommendedItem]:
        """A campaign's items for one user, best first; one attempt bounded by the timeout.
        Any failure is a `PersonalizeError`, so the caller can fall back to in-house lists."""
        params: dict[str, Any] = {
            "campaignArn": campaign_arn,
            "userId": user_id,
            "numResults": num_results,
        }
        if filter_arn:
            params["filterArn"] = filter_arn
        try:
            response = self.runtime_client(timeout_seconds).get_recommendations(**params)
        except (BotoCoreError, ClientError) as error:
            raise personalize_error("get_recommendations", f"user {user_id}", error) from error
        return [
            RecommendedItem(entry["itemId"], entry.get("score"))
            for entry in response.get("itemList", [])
        ]
