from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from recommendations import views as recommendations_views

admin.site.site_header = "Newsletter personalization"
admin.site.site_title = "Recsite admin"
admin.site.index_title = "Audience, catalogue, placements and bulletins"
# "View site": the widget demo where it is on; the service has no public site of its own.
admin.site.site_url = "/demo/" if settings.DEMO_PAGE_ENABLED else None

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/bulletins/", include("bulletins.api_urls")),
    path("api/v1/", include("recommendations.urls")),
    # The widget demo (DEMO_PAGE_ENABLED): 404 when off.
    path("demo/", recommendations_views.demo_home, name="demo"),
    path("demo/items/<str:external_id>/", recommendations_views.demo_item, name="demo-item"),
    path("", include("bulletins.urls")),
    # The root is for staff who typed the host name: the admin (its login when signed out).
    path("", RedirectView.as_view(pattern_name="admin:index"), name="home"),
]


# Under /api/ a URL no route matches answers in JSON, like the API (recsite.api.not_found).
handler404 = "recsite.api.not_found"
