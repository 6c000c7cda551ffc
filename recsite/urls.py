from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "Newsletter personalization"
admin.site.site_title = "Recsite admin"
admin.site.index_title = "Audience, catalogue, placements and bulletins"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/bulletins/", include("bulletins.api_urls")),
    path("api/v1/", include("recommendations.urls")),
    path("", include("bulletins.urls")),
]
