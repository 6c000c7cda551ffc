from django.contrib import admin
from django.urls import include, path

from recommendations import views as recommendations_views

admin.site.site_header = "Newsletter personalization"
admin.site.site_title = "Recsite admin"
admin.site.index_title = "Audience, catalogue, placements and bulletins"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/bulletins/", include("bulletins.api_urls")),
    path("api/v1/", include("recommendations.urls")),
    # The widget demo (DEMO_PAGE_ENABLED): 404 when off.
    path("demo/", recommendations_views.demo_home, name="demo"),
    path("demo/items/<str:external_id>/", recommendations_views.demo_item, name="demo-item"),
    path("", include("bulletins.urls")),
]


# Under /api/ a URL no route matches answers in JSON, like the API (recsite.api.not_found).
handler404 = "recsite.api.not_found"
