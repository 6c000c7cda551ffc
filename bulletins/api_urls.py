from django.urls import path

from bulletins.api import ConnectedContentApi

urlpatterns = [
    path(
        "<slug:slug>/content/<str:user_id>/",
        ConnectedContentApi.as_view(),
        name="api-bulletin-content",
    ),
]
