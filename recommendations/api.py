"""The public HTTP API: thin views over the services."""

import json

from django.conf import settings
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from recommendations.services.events import events_ingest
from recsite.api import ApplicationError


class EventCreateApi(APIView):
    """`POST /api/v1/events/`: a JSON array of behaviour events (or `{"events": [...]}`).

    200 when every event was stored or was a duplicate; 400 with per-event errors when some
    were rejected (the valid ones are stored all the same); 413 above the size limits.
    """

    def post(self, request):
        # Checked before the body is read, so an oversized request costs nothing.
        self._check_body_size(int(request.META.get("CONTENT_LENGTH") or 0))
        events = self._events_from_body(request)
        if len(events) > settings.EVENTS_MAX_BATCH:
            raise ApplicationError(
                f"{len(events)} events in one request; the limit is {settings.EVENTS_MAX_BATCH}.",
                status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        result = events_ingest(events=events)
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
        body = request.body
        self._check_body_size(len(body))  # a chunked request declares no length
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ApplicationError(f"Body is not valid JSON: {error}") from None
        if isinstance(payload, dict) and isinstance(payload.get("events"), list):
            payload = payload["events"]
        if not isinstance(payload, list):
            raise ApplicationError("Body must be a JSON array of events.")
        if not payload:
            raise ApplicationError("The array of events is empty.")
        return payload
