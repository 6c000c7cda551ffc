from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html_join

from recommendations.models import (
    ApiKey,
    EndUser,
    EventType,
    Interaction,
    Item,
    ModelVersion,
    Placement,
    RecommendationRun,
    RecommendationSet,
    Segment,
    SegmentCondition,
)
from recommendations.services.api_keys import api_key_issue
from recommendations.services.rules import condition_to_engine
from recommendations.services.training import TrainingError, model_version_activate
from recommendations.tasks import recommendations_compute_all_task, segments_refresh_task


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

    @admin.action(description="Revoke the selected keys", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        revoked = queryset.update(is_active=False)
        self.message_user(request, f"Revoked {revoked} key(s).")


@admin.register(Placement)
class PlacementAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "strategy", "count", "is_active"]
    list_filter = ["strategy", "is_active"]
    search_fields = ["slug", "name"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "source",
        "status",
        "is_active",
        "ndcg",
        "precision",
        "popularity_ndcg",
        "interactions",
        "duration_seconds",
        "created_at",
    ]
    list_filter = ["source", "status", "is_active"]
    readonly_fields = [field.name for field in ModelVersion._meta.fields if field.name != "id"]
    actions = ["activate"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # versions come from training (manage.py train, or the scheduled task)

    @admin.display(description="nDCG@k")
    def ndcg(self, version: ModelVersion) -> str:
        return _metric(version.metrics, "ndcg_at_k")

    @admin.display(description="Precision@k")
    def precision(self, version: ModelVersion) -> str:
        return _metric(version.metrics, "precision_at_k")

    @admin.display(description="popularity nDCG@k")
    def popularity_ndcg(self, version: ModelVersion) -> str:
        return _metric(version.baseline_metrics, "ndcg_at_k")

    @admin.display(description="interactions")
    def interactions(self, version: ModelVersion) -> str:
        return f"{version.data_size.get('interactions', 0):,}"

    @admin.action(
        description="Activate (roll back or forward to) the selected version",
        permissions=["change"],
    )
    def activate(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version.", messages.ERROR)
            return
        version = queryset.get()
        try:
            model_version_activate(version=version, reason=f"activated by {request.user} in admin")
        except TrainingError as error:
            self.message_user(request, str(error), messages.ERROR)
            return
        recommendations_compute_all_task.delay_on_commit()
        self.message_user(
            request, f"{version} is active; every user's lists are being recomputed with it."
        )


def _metric(metrics: dict, name: str) -> str:
    value = metrics.get(name)
    return "—" if value is None else f"{value:.4f}"


@admin.register(RecommendationSet)
class RecommendationSetAdmin(admin.ModelAdmin):
    list_display = ["user", "placement", "source", "model_version", "size", "computed_at"]
    list_filter = ["placement", "source"]
    list_select_related = ["user", "placement", "model_version"]
    search_fields = ["=user__external_id"]
    raw_id_fields = ["user"]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="items")
    def size(self, recommendation_set: RecommendationSet) -> int:
        return len(recommendation_set.items)


@admin.register(RecommendationRun)
class RecommendationRunAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "model_version",
        "status",
        "progress",
        "users",
        "lists_written",
        "started_at",
        "finished_at",
    ]
    list_filter = ["status"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="shards done")
    def progress(self, run: RecommendationRun) -> str:
        return f"{run.shards_done} / {run.shards}"


class SegmentConditionInline(admin.TabularInline):
    model = SegmentCondition
    extra = 1

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        formset.form = _condition_form(formset.form)
        return formset


def _condition_form(base):
    """A condition form that refuses values the engine could not compare, naming the field."""

    class ConditionForm(base):
        def clean(self):
            cleaned = super().clean()
            if cleaned.get("field") and cleaned.get("operator") and not cleaned.get("DELETE"):
                condition_to_engine(
                    self.instance.__class__(
                        field=cleaned["field"],
                        operator=cleaned["operator"],
                        value=cleaned.get("value", ""),
                    )
                )
            return cleaned

    return ConditionForm


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "kind", "size", "summary", "refreshed_at"]
    list_filter = ["kind"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["size", "profile_table", "refreshed_at"]
    inlines = [SegmentConditionInline]
    actions = ["refresh"]

    def get_readonly_fields(self, request: HttpRequest, obj: Segment | None = None):
        if obj and obj.kind == Segment.Kind.LEARNED:
            return [*self.readonly_fields, "name", "slug", "kind"]
        return self.readonly_fields

    def get_inlines(self, request: HttpRequest, obj: Segment | None = None):
        return [] if obj and obj.kind == Segment.Kind.LEARNED else self.inlines

    @admin.display(description="profile")
    def summary(self, segment: Segment) -> str:
        profile = segment.profile
        if "conditions" in profile:
            return " and ".join(profile["conditions"]) or "everyone"
        if "top_categories" in profile:
            return (
                f"{profile['share']:.0%} of users; top: {', '.join(profile['top_categories'])}; "
                f"median {profile.get('median_recency_days', 0):.0f} days since last event"
            )
        return "retired: fewer learned segments now" if "retired" in profile else "—"

    @admin.display(description="profile")
    def profile_table(self, segment: Segment) -> str:
        return format_html_join(
            "",
            "<div><strong>{}</strong>: {}</div>",
            ((key, value) for key, value in segment.profile.items()),
        )

    @admin.action(description="Refresh the members of every segment now")
    def refresh(self, request: HttpRequest, queryset: QuerySet[Segment]) -> None:
        segments_refresh_task.delay_on_commit()
        self.message_user(request, "Segments are being refreshed.")
