"""`GET /api/v1/bulletins/<slug>/content/<user id>/`: a user's block for Braze Connected
Content (secret key). A Braze message fetches it at send time with
`{% connected_content https://.../api/v1/bulletins/weekly/content/{{${user_id}}}/
:headers {"Authorization": "Bearer <secret key>"} :save block %}` and prints `{{block.html}}`."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from bulletins.services.content import connected_content_for
from recsite.api import ApplicationError

MESSAGE = inline_serializer("NotFound", {"message": serializers.CharField()})


class ConnectedContentApi(APIView):
    @extend_schema(
        operation_id="bulletin_connected_content",
        summary="A user's latest email of a bulletin, for Braze Connected Content",
        responses={
            200: inline_serializer(
                "ConnectedContent",
                {
                    "recipient_id": serializers.CharField(),
                    "subject": serializers.CharField(),
                    "html": serializers.CharField(),
                    "text": serializers.CharField(),
                    "delivery_id": serializers.CharField(),
                    "merge": serializers.DictField(),
                },
            ),
            401: MESSAGE,
            403: MESSAGE,
            404: MESSAGE,
        },
    )
    def get(self, request, slug: str, user_id: str):
        content = connected_content_for(bulletin_slug=slug, user_external_id=user_id)
        if content is None:
            raise ApplicationError(
                f"no email of bulletin {slug!r} for user {user_id!r}",
                status_code=status.HTTP_404_NOT_FOUND,
            )
        return Response(content)
