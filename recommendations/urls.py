from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from recommendations.api import EventCreateApi, IdentifyApi, RecommendationListApi

urlpatterns = [
    path("recommendations/", RecommendationListApi.as_view(), name="api-recommendations"),
    path("events/", EventCreateApi.as_view(), name="api-events"),
    path("identify/", IdentifyApi.as_view(), name="api-identify"),
    path(
        "schema/",
        SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]),
        name="api-schema",
    ),
    path(
        "docs/",
        SpectacularSwaggerView.as_view(
            url_name="api-schema", authentication_classes=[], permission_classes=[]
        ),
        name="api-docs",
    ),
]
