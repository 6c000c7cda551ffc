from django.urls import path

from recommendations.api import EventCreateApi

urlpatterns = [
    path("events/", EventCreateApi.as_view(), name="api-events"),
]
