"""The public links in emails, at the site root: /r/<token>, /o/<token>.gif, /u/<token>."""

from django.urls import path

from bulletins import views

urlpatterns = [
    path("r/<str:token>", views.click_redirect, name="bulletin-click"),
    path("o/<str:token>.gif", views.open_pixel, name="bulletin-open"),
    path("u/<str:token>", views.unsubscribe, name="bulletin-unsubscribe"),
]
