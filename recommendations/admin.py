from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest

from recommendations.models import ApiKey, EndUser, EventType, Interaction, Item
from recommendations.services.api_keys import api_key_issue


@admin.register(EndUser)
class EndUserAdmin(admin.ModelAdmin):
    list_display = [
        "external_id",
        "email",
        "email_opt_in",
        "personalization_opt_out",
        "is_anonymous",
        "created_at",
    ]
    list_filter = ["email_opt_in", "personalization_opt_out", "is_anonymous", "created_at"]
    search_fields = ["=external_id", "email"]
    readonly_fields = ["created_at", "updated_at"]
    show_full_result_count = False


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["external_id", "title", "available", "price", "published_at", "updated_at"]
    list_filter = ["available", "published_at"]
    search_fields = ["=external_id", "title", "description"]
    date_hierarchy = "published_at"
    readonly_fields = ["created_at", "updated_at"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    show_full_result_count = False


@admin.register(EventType)
class EventTypeAdmin(admin.ModelAdmin):
    list_display = ["name", "weight", "value_mode", "is_conversion", "description"]
    list_editable = ["weight", "value_mode", "is_conversion"]
    search_fields = ["name"]


@admin.register(Interaction)
class InteractionAdmin(admin.ModelAdmin):
    list_display = ["timestamp", "user", "event_type", "item", "event_value", "source"]
    list_filter = ["event_type", "source", "timestamp"]
    list_select_related = ["user", "item", "event_type"]
    search_fields = ["=user__external_id", "=item__external_id", "=event_id"]
    raw_id_fields = ["user", "item"]
    date_hierarchy = "timestamp"
    readonly_fields = ["received_at"]
    show_full_result_count = False


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "prefix", "is_active", "created_at", "last_used_at"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "created_at", "last_used_at"]
    actions = ["revoke"]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None):
        return [*self.readonly_fields, "kind"] if obj else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: ApiKey, form, change: bool) -> None:
        if not change:
            raw_key = api_key_issue(obj)
            messages.warning(
                request,
                f"The key for “{obj.name}” is {raw_key} — copy it now: it is stored hashed and "
                "cannot be shown again.",
            )
        super().save_model(request, obj, form, change)

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        revoked = queryset.update(is_active=False)
        self.message_user(request, f"Revoked {revoked} key(s).")
