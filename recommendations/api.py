"""The public HTTP API: thin views over the services, described by the OpenAPI schema at
`/api/v1/schema/` (browsable at `/api/v1/docs/`)."""

import json

from django.conf import settings
from drf_spectacular.utils import (
    OpenApiParameter,
    PolymorphicProxySerializer,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.fields import SkipField
from rest_framework.response import Response
from rest_framework.views import APIView

from recommendations.authentication import HasSiteKey, PublicKeyThrottle
from recommendations.models import ApiKey, Interaction
from recommendations.services.events import events_ingest
from recommendations.services.identity import IdentifyError, visitor_identify
from recommendations.services.live import ItemRequired, PlacementNotFound, recommendations_live
from recsite.api import ApplicationError


class RecommendationQuery(serializers.Serializer):
    placement = serializers.SlugField(max_length=50, help_text="The placement's slug.")
    user = serializers.CharField(
        max_length=255,
        required=False,
        default="",
        help_text="The user's id, or the widget's anonymous visitor id; empty: a visitor "
        "without an id (gets the placement's non-personalized list).",
    )
    k = serializers.IntegerField(
        min_value=1,
        max_value=settings.API_MAX_K,
        required=False,
        help_text="How many items; the placement's count by default.",
    )
    item = serializers.CharField(
        max_length=255,
        required=False,
        default="",
        help_text="The page's item, for similar-items placements.",
    )


# Bound once: a serializer deep-copies its fields on every instantiation, which cost the
# recommendations API a third of a millisecond a request.
_QUERY_FIELDS = RecommendationQuery().fields


def _query_parameters(params) -> dict:
    """The recommendations query, validated by `RecommendationQuery`'s fields."""
    values, errors = {}, {}
    for name, query_field in _QUERY_FIELDS.items():
        try:
            values[name] = query_field.run_validation(query_field.get_value(params))
        except SkipField:
            continue
        except serializers.ValidationError as error:
            errors[name] = error.detail
    if errors:
        raise serializers.ValidationError(errors)
    return values


class RecommendedItem(serializers.Serializer):
    id = serializers.CharField()
    title = serializers.CharField()
    url = serializers.URLField(help_text="The tracked link: records the click, then redirects.")
    item_url = serializers.CharField(help_text="The item's own URL.")
    image = serializers.CharField(help_text="Image URL, or empty.")
    score = serializers.FloatField(allow_null=True)
    source = serializers.ChoiceField(["inhouse", "personalize", "trending"])
    position = serializers.IntegerField(min_value=1)
    reason = serializers.CharField()
    because_item_id = serializers.CharField(allow_null=True)
    explanation = serializers.CharField(help_text="Why it is shown, for the reader.")


class RecommendationList(serializers.Serializer):
    placement = serializers.CharField()
    user = serializers.CharField(allow_null=True)
    variant = serializers.CharField(
        allow_null=True, help_text="The experiment arm the user is in, if the placement has arms."
    )
    request_id = serializers.CharField(help_text="Send it back in the events' context.")
    items = RecommendedItem(many=True)


ERROR = inline_serializer(
    "Error", {"message": serializers.CharField(), "errors": serializers.DictField(required=False)}
)
# What every key-checked endpoint may answer besides its own codes.
KEY_ERRORS = {401: ERROR, 403: ERROR, 429: ERROR}
EVENTS_STORED = inline_serializer(
    "EventsStored",
    {
        "accepted": serializers.IntegerField(),
        "duplicates": serializers.IntegerField(),
        "rejected": serializers.IntegerField(),
        "errors": serializers.ListField(child=serializers.DictField()),
    },
)
KEY_PARAMETER = OpenApiParameter(
    "key",
    str,
    description="A public key (widgets); secret keys go in the Authorization header only.",
)


class RecommendationListApi(APIView):
    """`GET /api/v1/recommendations/?user=ID&placement=SLUG&k=N[&item=ID]`."""

    permission_classes = [HasSiteKey]
    throttle_classes = [PublicKeyThrottle]

    @extend_schema(
        operation_id="recommendations_list",
        summary="A user's recommendations for a placement",
        description="Served from the cache; on a miss computed for that user (for a "
        "Personalize source with a campaign set, asked from the campaign in real time), then "
        "the placement's fallbacks. Secret keys, or public keys from their allowed origins.",
        parameters=[RecommendationQuery, KEY_PARAMETER],
        responses={200: RecommendationList, 400: ERROR, 404: ERROR, **KEY_ERRORS},
    )
    def get(self, request):
        query = _query_parameters(request.query_params)
        try:
            answer = recommendations_live(
                placement_slug=query["placement"],
                user_id=query["user"].strip(),
                k=query.get("k"),
                item_id=query["item"].strip(),
                create_visitor=request.auth.kind == ApiKey.Kind.PUBLIC,
            )
        except PlacementNotFound as error:
            raise ApplicationError(
                f"placement: {error}", status_code=status.HTTP_404_NOT_FOUND
            ) from None
        except ItemRequired as error:
            raise ApplicationError(
                "Validation error", extra={"errors": {"item": [str(error)]}}
            ) from None
        return Response(answer)


class IdentifyApi(APIView):
    """`POST /api/v1/identify/`: on login, the anonymous visitor's history becomes the user's."""

    permission_classes = [HasSiteKey]
    throttle_classes = [PublicKeyThrottle]

    @extend_schema(
        operation_id="identify",
        summary="Merge an anonymous visitor into a known user",
        request=inline_serializer(
            "Identify",
            {"anonymous_id": serializers.CharField(), "user_id": serializers.CharField()},
        ),
        parameters=[KEY_PARAMETER],
        responses={
            200: inline_serializer(
                "Identified",
                {"user_id": serializers.CharField(), "merged_events": serializers.IntegerField()},
            ),
            400: ERROR,
            **KEY_ERRORS,
        },
    )
    def post(self, request):
        payload = _json_body(request)
        if not isinstance(payload, dict):
            raise ApplicationError("Body must be a JSON object with anonymous_id and user_id.")
        try:
            identified = visitor_identify(
                anonymous_id=payload.get("anonymous_id"), user_id=payload.get("user_id")
            )
        except IdentifyError as error:
            raise ApplicationError(
                "Validation error", extra={"errors": {error.field: [str(error)]}}
            ) from None
        return Response({"user_id": identified.user_id, "merged_events": identified.merged_events})


def _json_body(request):
    """The body as JSON whatever its Content-Type: `sendBeacon` and preflight-free `fetch`
    calls send JSON as text/plain."""
    try:
        return json.loads(request.body)
    except (ValueError, RecursionError) as error:
        # ValueError: not JSON, not UTF-8, or an integer of more than 4,300 digits;
        # RecursionError: nested deeper than Python's stack.
        reason = "nested too deeply" if isinstance(error, RecursionError) else error
        raise ApplicationError(f"Body is not valid JSON: {reason}") from None


class EventCreateApi(APIView):
    """`POST /api/v1/events/`: a JSON array of behaviour events (or `{"events": [...]}`).

    200 when every event was stored or was a duplicate; 400 with per-event errors when some
    were rejected (the valid ones are stored all the same); 413 above the size limits.
    Public keys (the widget) may send small batches; their events are stored as the widget's.
    """

    permission_classes = [HasSiteKey]
    throttle_classes = [PublicKeyThrottle]

    @extend_schema(
        operation_id="events_create",
        summary="Store behaviour events",
        request={"application/json": {"type": "array", "items": {"type": "object"}}},
        parameters=[KEY_PARAMETER],
        responses={
            200: EVENTS_STORED,
            # Some events rejected (the counts), or a body that is not a batch (Error).
            400: PolymorphicProxySerializer(
                component_name="EventsRejected",
                serializers=[EVENTS_STORED, ERROR],
                resource_type_field_name=None,
            ),
            413: ERROR,
            **KEY_ERRORS,
        },
    )
    def post(self, request):
        # Checked before the body is read, so an oversized request costs nothing.
        self._check_body_size(int(request.META.get("CONTENT_LENGTH") or 0))
        events = self._events_from_body(request)
        public = request.auth.kind == ApiKey.Kind.PUBLIC
        limit = settings.EVENTS_MAX_BATCH_PUBLIC if public else settings.EVENTS_MAX_BATCH
        if len(events) > limit:
            raise ApplicationError(
                f"{len(events)} events in one request; the limit is {limit}.",
                status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        source = Interaction.Source.WIDGET if public else Interaction.Source.API
        result = events_ingest(events=events, source=source)
        code = status.HTTP_400_BAD_REQUEST if result.rejected else status.HTTP_200_OK
        return Response(result.as_dict(), status=code)

    @staticmethod
    def _check_body_size(size: int) -> None:
        limit = settings.EVENTS_MAX_BODY_BYTES
        if size > limit:
            raise ApplicationError(
                f"Request body is {size} bytes; the limit is {limit}. Send smaller batches.",
                status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )

    def _events_from_body(self, request) -> list:
        self._check_body_size(len(request.body))  # a chunked request declares no length
        payload = _json_body(request)
        if isinstance(payload, dict) and isinstance(payload.get("events"), list):
            payload = payload["events"]
        if not isinstance(payload, list):
            raise ApplicationError("Body must be a JSON array of events.")
        if not payload:
            raise ApplicationError("The array of events is empty.")
        return payload
